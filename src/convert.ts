// `voicebridge convert IN.wav OUT.wav --rate 8000|16000|24000 [--codec pcm16|mulaw|alaw]`
//
// Runs a file through the bridge's own DSP (the WASM G.711 codecs and resamplers), to hear what
// the model hears (8 kHz mu-law -> 24 kHz PCM16) or what the caller hears (24 kHz -> 8 kHz mu-law),
// or to prepare audio for the simulator.
//
// Steps: read the WAV (16-bit PCM, mu-law or A-law; several channels are averaged to mono) ->
// decode G.711 -> resample with the bridge's Resampler -> encode -> write. The resamplers
// connect 8, 16 and 24 kHz in every direction, so every supported pair is one step; any other
// input rate is rejected with the sox command that would fix it. G.711 output exists only at
// 8 kHz. Same rate and codec copies the samples unchanged.
//
// Alignment: the resampler's linear-phase filter delays its output by ~2.2 ms, not always a whole
// number of output samples (17.67 for 24k -> 8k). convert feeds one or two zeros first so that it
// is whole, drops it, and flushes the filter at the end: the output starts and ends with the input,
// in time to the sample, and has round(n * outRate / inRate) samples.
//
// Exit codes: 0 done, 1 the output could not be written, 2 usage or input errors (message on
// stderr).
import { readFile } from 'node:fs/promises';
import { readWav, WavError, writeWavFile, type WavAudio, type WavCodec } from './audio/wav.js';
import { decodeAlaw, decodeMulaw, encodeAlaw, encodeMulaw } from './dsp/g711.js';
import { Resampler, type SampleRate } from './dsp/resample.js';

export const CONVERT_RATES: readonly SampleRate[] = [8000, 16000, 24000];
export const CONVERT_CODECS: readonly WavCodec[] = ['pcm16', 'mulaw', 'alaw'];

export const CONVERT_USAGE = `usage: voicebridge convert IN.wav OUT.wav --rate 8000|16000|24000 [--codec pcm16|mulaw|alaw]

  Runs IN through the bridge's DSP (G.711 decode, resampling, G.711 encode) and writes OUT.
  IN: 16-bit PCM, mu-law or A-law WAV at 8000, 16000 or 24000 Hz (channels are averaged).
  --rate   output sample rate (required)
  --codec  output encoding, default pcm16; mulaw and alaw need --rate 8000
`;

/** A usage or input error: exit code 2. */
export class ConvertError extends Error {
  override name = 'ConvertError';
}

export interface ConvertOptions {
  rate: SampleRate;
  codec: WavCodec;
}

export interface ConvertArgs extends ConvertOptions {
  input: string;
  output: string;
}

function isRate(n: number): n is SampleRate {
  return (CONVERT_RATES as readonly number[]).includes(n);
}

function isCodec(s: string): s is WavCodec {
  return (CONVERT_CODECS as readonly string[]).includes(s);
}

/** Parses the arguments after `convert`; null for --help. Throws ConvertError. */
export function parseConvertArgs(argv: string[]): ConvertArgs | null {
  const files: string[] = [];
  let rate: string | undefined;
  let codec: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return null;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (name === '--rate' || name === '--codec') {
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '') throw new ConvertError(`${name} needs a value`);
      if (name === '--rate') rate = value;
      else codec = value;
    } else if (a.startsWith('-') && a !== '-') {
      throw new ConvertError(`unknown option ${a}`);
    } else {
      files.push(a);
    }
  }
  if (files.length < 2) throw new ConvertError(files.length === 0 ? 'missing IN.wav and OUT.wav' : 'missing OUT.wav');
  if (files.length > 2) throw new ConvertError(`too many arguments: ${files.slice(2).join(' ')}`);
  if (rate === undefined) throw new ConvertError('missing --rate (8000, 16000 or 24000)');
  const r = Number(rate);
  if (!isRate(r)) throw new ConvertError(`--rate ${rate} is not supported: use 8000, 16000 or 24000`);
  const c = codec ?? 'pcm16';
  if (!isCodec(c)) throw new ConvertError(`--codec ${c} is not supported: use pcm16, mulaw or alaw`);
  checkCodecRate(c, r);
  return { input: files[0], output: files[1], rate: r, codec: c };
}

function checkCodecRate(codec: WavCodec, rate: number): void {
  if (codec !== 'pcm16' && rate !== 8000) {
    throw new ConvertError(`--codec ${codec} needs --rate 8000 (G.711 is an 8 kHz codec); got ${rate}`);
  }
}

function toPcm(audio: WavAudio): Int16Array {
  if (audio.codec === 'pcm16') return audio.data;
  return audio.codec === 'mulaw' ? decodeMulaw(audio.data) : decodeAlaw(audio.data);
}

/**
 * Zeros to put in front of the input so that the resampler's delay, counted in output samples,
 * becomes a whole number: delayOut + z * outRate / inRate. It is ((N - 1) / 2 + z * L) / M for
 * an N-tap filter at L/M, so some z < M works (N is odd and L, M are coprime).
 */
function alignmentPad(delayOut: number, inRate: number, outRate: number): { pad: number; skip: number } {
  for (let z = 0; z <= inRate; z++) {
    const d = delayOut + (z * outRate) / inRate;
    if (Math.abs(d - Math.round(d)) < 1e-6) return { pad: z, skip: Math.round(d) };
  }
  return { pad: 0, skip: Math.round(delayOut) }; // unreachable for the rates we accept
}

/**
 * Resamples a whole signal with the bridge's resampler, delay removed: the output has
 * round(n * outRate / inRate) samples, output sample k at the time of input sample
 * k * inRate / outRate, exactly.
 */
export function resampleAligned(pcm: Int16Array, inRate: SampleRate, outRate: SampleRate): Int16Array {
  if (inRate === outRate) return pcm;
  const want = Math.round((pcm.length * outRate) / inRate);
  const r = new Resampler(inRate, outRate);
  try {
    const { pad, skip } = alignmentPad(r.delayOut, inRate, outRate);
    // Zeros after the end push the last input samples through the filter.
    const flush = Math.ceil(r.delayIn) + Math.ceil(inRate / outRate) + 2;
    const parts = [r.processCopy(new Int16Array(pad)), r.processCopy(pcm), r.processCopy(new Int16Array(flush))];
    const all = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    const out = new Int16Array(want);
    out.set(all.subarray(skip, skip + want));
    return out;
  } finally {
    r.free();
  }
}

/** Converts decoded WAV audio (mono) to `rate` and `codec`. Throws ConvertError. */
export function convertAudio(audio: WavAudio, opts: ConvertOptions): WavAudio {
  const { rate, codec } = opts;
  checkCodecRate(codec, rate);
  if (audio.channels !== 1) throw new ConvertError(`${audio.channels}-channel audio: convert takes mono (readWav downmixes PCM)`);
  if (!isRate(audio.sampleRate)) {
    throw new ConvertError(
      `input sample rate ${audio.sampleRate} Hz is not supported (8000, 16000 or 24000 Hz only); ` +
        `resample it first, e.g. \`sox in.wav -r ${rate} -b 16 -c 1 out.wav\``,
    );
  }
  if (audio.sampleRate === rate && audio.codec === codec) {
    return codec === 'pcm16'
      ? { sampleRate: rate, channels: 1, codec, data: audio.data.slice() as Int16Array }
      : { sampleRate: rate, channels: 1, codec, data: audio.data.slice() as Uint8Array };
  }
  const pcm = resampleAligned(toPcm(audio), audio.sampleRate, rate);
  if (codec === 'pcm16') return { sampleRate: rate, channels: 1, codec, data: pcm };
  return { sampleRate: rate, channels: 1, codec, data: codec === 'mulaw' ? encodeMulaw(pcm) : encodeAlaw(pcm) };
}

export interface ConvertIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const CODEC_NAMES: Record<WavCodec, string> = { pcm16: '16-bit PCM', mulaw: 'mu-law', alaw: 'A-law' };

function describe(a: WavAudio): string {
  const seconds = a.data.length / a.channels / a.sampleRate;
  return `${a.sampleRate} Hz ${CODEC_NAMES[a.codec]}${a.channels > 1 ? ` ${a.channels} ch` : ''}, ${seconds.toFixed(2)} s`;
}

/** `voicebridge convert ...`: returns the exit code. */
export async function runConvertCli(argv: string[], io: ConvertIo = process): Promise<number> {
  let args: ConvertArgs | null;
  try {
    args = parseConvertArgs(argv);
  } catch (e) {
    if (!(e instanceof ConvertError)) throw e;
    io.stderr.write(`voicebridge convert: ${e.message}\n${CONVERT_USAGE}`);
    return 2;
  }
  if (args === null) {
    io.stdout.write(CONVERT_USAGE);
    return 0;
  }

  let input: WavAudio;
  try {
    const bytes = await readFile(args.input);
    input = readWav(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = e instanceof WavError ? e.message : code === 'ENOENT' ? 'no such file' : e instanceof Error ? e.message : String(e);
    io.stderr.write(`voicebridge convert: ${args.input}: ${why}\n`);
    return 2;
  }

  let output: WavAudio;
  try {
    output = convertAudio(input, args);
  } catch (e) {
    if (!(e instanceof ConvertError)) throw e;
    io.stderr.write(`voicebridge convert: ${args.input}: ${e.message}\n`);
    return 2;
  }

  try {
    await writeWavFile(args.output, output);
  } catch (e) {
    io.stderr.write(`voicebridge convert: cannot write ${args.output}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  io.stdout.write(`${args.input} (${describe(input)}) -> ${args.output} (${describe(output)})\n`);
  return 0;
}
