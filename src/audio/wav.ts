// WAV (RIFF/WAVE) reading and writing for the formats voicebridge handles: 16-bit PCM at any rate,
// and G.711 mu-law (format tag 7) / A-law (format tag 6). WAVE_FORMAT_EXTENSIBLE (0xFFFE) is read
// when its subformat is one of those. Unknown chunks (LIST, fact, cue, bext, ...) are skipped.
// Everything else fails with a WavError that says what the file is and how to convert it.
//
// Channels: by default (`channels: 'mono'`) multi-channel PCM16 is DOWNMIXED to mono by averaging
// the channels (rounded), because every consumer here wants mono telephone audio;
// `channels: 'keep'` returns interleaved samples with the file's channel count. Multi-channel
// G.711 cannot be averaged without decoding, so it is an error under 'mono' (use 'keep').
//
// A data chunk whose declared size runs past the end of the file is an error (truncated file),
// except the streaming placeholder size 0xFFFFFFFF, which means "until the end of the file".
// Not a hot path: files are read once, before a call or a test.

import { readFile, writeFile } from 'node:fs/promises';

export type WavCodec = 'pcm16' | 'mulaw' | 'alaw';

export type WavAudio =
  | { sampleRate: number; channels: number; codec: 'pcm16'; data: Int16Array }
  | { sampleRate: number; channels: number; codec: 'mulaw' | 'alaw'; data: Uint8Array };

export interface ReadWavOptions {
  /** 'mono' (default): downmix PCM16, reject multi-channel G.711. 'keep': interleaved as stored. */
  channels?: 'mono' | 'keep';
}

export class WavError extends Error {
  override name = 'WavError';
}

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_ALAW = 6;
const FORMAT_MULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;
// Bytes 2..15 of every KSDATAFORMAT_SUBTYPE_* GUID derived from a format tag.
const SUBTYPE_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

const FORMAT_NAMES: Record<number, string> = {
  2: 'Microsoft ADPCM',
  3: 'IEEE float',
  0x11: 'IMA ADPCM',
  0x31: 'GSM 6.10',
  0x50: 'MPEG',
  0x55: 'MPEG Layer 3',
};

const CONVERT_HINT = 'convert it with e.g. `sox in.wav -e signed-integer -b 16 -c 1 out.wav`';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fourcc(b: Uint8Array, off: number): string {
  return String.fromCharCode(b[off], b[off + 1], b[off + 2], b[off + 3]);
}

interface Fmt {
  tag: number;
  channels: number;
  sampleRate: number;
  blockAlign: number;
  bits: number;
}

function parseFmt(b: Uint8Array, dv: DataView, off: number, size: number): Fmt {
  if (size < 16) throw new WavError(`fmt chunk is ${size} bytes; at least 16 are required`);
  let tag = dv.getUint16(off, true);
  const channels = dv.getUint16(off + 2, true);
  const sampleRate = dv.getUint32(off + 4, true);
  const blockAlign = dv.getUint16(off + 12, true);
  const bits = dv.getUint16(off + 14, true);
  if (tag === FORMAT_EXTENSIBLE) {
    if (size < 40 || dv.getUint16(off + 16, true) < 22) {
      throw new WavError('WAVE_FORMAT_EXTENSIBLE fmt chunk is too short to hold its subformat');
    }
    const g = off + 24;
    for (let i = 0; i < SUBTYPE_TAIL.length; i++) {
      if (b[g + 2 + i] !== SUBTYPE_TAIL[i]) throw new WavError('WAVE_FORMAT_EXTENSIBLE with a non-standard subformat GUID is not supported');
    }
    tag = dv.getUint16(g, true);
  }
  if (channels === 0) throw new WavError('fmt chunk declares 0 channels');
  if (sampleRate === 0) throw new WavError('fmt chunk declares a sample rate of 0');
  return { tag, channels, sampleRate, blockAlign, bits };
}

function checkFmt(f: Fmt): WavCodec {
  if (f.tag === FORMAT_PCM) {
    if (f.bits !== 16) {
      const what = f.bits === 8 ? '8-bit unsigned PCM' : `${f.bits}-bit PCM`;
      throw new WavError(`${what} WAV is not supported (16-bit PCM, mu-law or A-law only); ${CONVERT_HINT}`);
    }
    if (f.blockAlign !== 2 * f.channels) throw new WavError(`fmt blockAlign ${f.blockAlign} does not match 16-bit x ${f.channels} channel(s)`);
    return 'pcm16';
  }
  if (f.tag === FORMAT_MULAW || f.tag === FORMAT_ALAW) {
    const name = f.tag === FORMAT_MULAW ? 'mu-law' : 'A-law';
    if (f.bits !== 8) throw new WavError(`${name} WAV with ${f.bits} bits per sample is invalid (G.711 is 8-bit)`);
    if (f.blockAlign !== f.channels) throw new WavError(`fmt blockAlign ${f.blockAlign} does not match 8-bit x ${f.channels} channel(s)`);
    return f.tag === FORMAT_MULAW ? 'mulaw' : 'alaw';
  }
  if (f.tag === FORMAT_FLOAT) {
    throw new WavError(`${f.bits}-bit IEEE float WAV is not supported (16-bit PCM, mu-law or A-law only); ${CONVERT_HINT}`);
  }
  const name = FORMAT_NAMES[f.tag];
  throw new WavError(
    `unsupported WAV format tag 0x${f.tag.toString(16).padStart(4, '0')}${name ? ` (${name})` : ''}; ${CONVERT_HINT}`,
  );
}

/** Averages interleaved channels into one (rounded half away from zero). */
export function downmixToMono(data: Int16Array, channels: number): Int16Array {
  if (channels === 1) return data;
  if (!Number.isInteger(channels) || channels < 1) throw new WavError(`invalid channel count ${channels}`);
  const frames = Math.floor(data.length / channels);
  const out = new Int16Array(frames);
  for (let i = 0, p = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += data[p++];
    const mean = sum / channels;
    out[i] = mean < 0 ? -Math.round(-mean) : Math.round(mean);
  }
  return out;
}

/** Parses a WAV file held in memory. Throws WavError for anything it does not support. */
export function readWav(buf: Uint8Array, opts: ReadWavOptions = {}): WavAudio {
  const b = buf;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 12) throw new WavError(`not a WAV file: only ${b.length} bytes`);
  const riff = fourcc(b, 0);
  if (riff === 'RIFX') throw new WavError('big-endian WAV (RIFX) is not supported');
  if (riff === 'RF64') throw new WavError('RF64 (64-bit) WAV is not supported');
  if (riff !== 'RIFF') throw new WavError(`not a WAV file: starts with ${JSON.stringify(riff)}, expected "RIFF"`);
  if (fourcc(b, 8) !== 'WAVE') throw new WavError(`not a WAV file: RIFF form type is ${JSON.stringify(fourcc(b, 8))}, expected "WAVE"`);

  let fmt: Fmt | undefined;
  let dataOff = -1;
  let dataLen = 0;
  let off = 12;
  while (off + 8 <= b.length) {
    const id = fourcc(b, off);
    const size = dv.getUint32(off + 4, true);
    const body = off + 8;
    const remaining = b.length - body;
    if (id === 'data') {
      if (dataOff >= 0) throw new WavError('WAV has more than one data chunk');
      if (size === 0xffffffff) {
        dataLen = remaining;
      } else if (size > remaining) {
        throw new WavError(`truncated WAV: data chunk declares ${size} bytes but only ${remaining} remain`);
      } else {
        dataLen = size;
      }
      dataOff = body;
    } else if (size > remaining) {
      // A cut-off trailing chunk after fmt and data (e.g. a LIST tag) does not affect the audio.
      if (fmt && dataOff >= 0) break;
      throw new WavError(`truncated WAV: ${JSON.stringify(id)} chunk declares ${size} bytes but only ${remaining} remain`);
    } else if (id === 'fmt ') {
      if (fmt) throw new WavError('WAV has more than one fmt chunk');
      fmt = parseFmt(b, dv, body, size);
    }
    const advance = id === 'data' ? dataLen : size;
    off = body + advance + (advance & 1); // chunks are padded to even length
  }
  if (!fmt) throw new WavError(dataOff >= 0 ? 'WAV has no fmt chunk' : 'truncated WAV: no fmt chunk found');
  if (dataOff < 0) throw new WavError('truncated WAV: no data chunk found');
  const codec = checkFmt(fmt);
  if (dataLen % fmt.blockAlign !== 0) {
    throw new WavError(`truncated WAV: data is ${dataLen} bytes, not a whole number of ${fmt.blockAlign}-byte frames`);
  }

  const mono = (opts.channels ?? 'mono') === 'mono';
  if (codec === 'pcm16') {
    const n = dataLen / 2;
    let data: Int16Array = new Int16Array(n);
    if (LITTLE_ENDIAN) {
      new Uint8Array(data.buffer).set(b.subarray(dataOff, dataOff + dataLen));
    } else {
      for (let i = 0; i < n; i++) data[i] = dv.getInt16(dataOff + 2 * i, true);
    }
    let channels = fmt.channels;
    if (mono && channels > 1) {
      data = downmixToMono(data, channels);
      channels = 1;
    }
    return { sampleRate: fmt.sampleRate, channels, codec, data };
  }
  if (mono && fmt.channels > 1) {
    throw new WavError(`${fmt.channels}-channel ${codec} WAV: only mono G.711 is supported (or read with channels: 'keep')`);
  }
  return { sampleRate: fmt.sampleRate, channels: fmt.channels, codec, data: b.slice(dataOff, dataOff + dataLen) };
}

/** Serializes audio as a canonical WAV (PCM16: 16-byte fmt; G.711: 18-byte fmt + fact chunk). */
export function writeWav(audio: WavAudio): Uint8Array {
  const { sampleRate, channels, codec } = audio;
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw new WavError(`invalid sample rate ${sampleRate}`);
  if (!Number.isInteger(channels) || channels < 1 || channels > 0xffff) throw new WavError(`invalid channel count ${channels}`);
  const pcm = codec === 'pcm16';
  if (pcm !== audio.data instanceof Int16Array) throw new WavError(`${codec} audio needs ${pcm ? 'an Int16Array' : 'a Uint8Array'} of samples`);
  if (!pcm && codec !== 'mulaw' && codec !== 'alaw') throw new WavError(`unknown codec ${String(codec)}`);
  const bytesPerSample = pcm ? 2 : 1;
  const dataLen = audio.data.length * bytesPerSample;
  if (audio.data.length % channels !== 0) throw new WavError(`${audio.data.length} samples is not a whole number of ${channels}-channel frames`);
  const fmtLen = pcm ? 16 : 18;
  const factLen = pcm ? 0 : 12;
  const pad = dataLen & 1;
  const total = 12 + 8 + fmtLen + factLen + 8 + dataLen + pad;
  if (total - 8 > 0xffffffff) throw new WavError('audio too long for a WAV file');
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const put4 = (o: number, s: string): void => {
    for (let i = 0; i < 4; i++) out[o + i] = s.charCodeAt(i);
  };
  put4(0, 'RIFF');
  dv.setUint32(4, total - 8, true);
  put4(8, 'WAVE');
  let o = 12;
  put4(o, 'fmt ');
  dv.setUint32(o + 4, fmtLen, true);
  dv.setUint16(o + 8, pcm ? FORMAT_PCM : codec === 'mulaw' ? FORMAT_MULAW : FORMAT_ALAW, true);
  dv.setUint16(o + 10, channels, true);
  dv.setUint32(o + 12, sampleRate, true);
  dv.setUint32(o + 16, sampleRate * channels * bytesPerSample, true);
  dv.setUint16(o + 20, channels * bytesPerSample, true);
  dv.setUint16(o + 22, bytesPerSample * 8, true);
  if (!pcm) dv.setUint16(o + 24, 0, true); // cbSize
  o += 8 + fmtLen;
  if (!pcm) {
    put4(o, 'fact');
    dv.setUint32(o + 4, 4, true);
    dv.setUint32(o + 8, audio.data.length / channels, true);
    o += 12;
  }
  put4(o, 'data');
  dv.setUint32(o + 4, dataLen, true);
  o += 8;
  if (pcm) {
    const d = audio.data as Int16Array;
    if (LITTLE_ENDIAN) out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), o);
    else for (let i = 0; i < d.length; i++) dv.setInt16(o + 2 * i, d[i], true);
  } else {
    out.set(audio.data as Uint8Array, o);
  }
  return out;
}

/** readWav on a file. */
export async function readWavFile(path: string, opts?: ReadWavOptions): Promise<WavAudio> {
  const buf = await readFile(path);
  try {
    return readWav(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), opts);
  } catch (e) {
    if (e instanceof WavError) throw new WavError(`${path}: ${e.message}`);
    throw e;
  }
}

/** writeWav to a file. */
export async function writeWavFile(path: string, audio: WavAudio): Promise<void> {
  await writeFile(path, writeWav(audio));
}
