// voicebridge convert: WAV in -> the bridge's DSP -> WAV out. Content is checked against what the
// fixtures are (sox-made tones, test/fixtures/wav, scripts/make-wav-fixtures.sh) and against
// sox's own G.711 encodings of the same file, not against this code's output.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWav, writeWav, type WavAudio } from '../src/audio/wav.js';
import { runConvertCli } from '../src/convert.js';
import { decodeAlaw, decodeMulaw } from '../src/dsp/g711.js';

const FIX = join(import.meta.dirname, 'fixtures', 'wav');
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vb-convert-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runConvertCli(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

async function convert(input: string, ...opts: string[]): Promise<WavAudio> {
  const output = join(dir, `${Math.random().toString(36).slice(2)}.wav`);
  const r = await run(join(FIX, input), output, ...opts);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return readWav(new Uint8Array(await readFile(output)));
}

function pcmOf(a: WavAudio): Int16Array {
  if (a.codec === 'pcm16') return a.data;
  return a.codec === 'mulaw' ? decodeMulaw(a.data) : decodeAlaw(a.data);
}

/** sox `synth sine F vol V` at `rate`: V * full scale * sin(2 pi F t), from t = 0. */
function soxSine(rate: number, n: number, freqs: number[], gain: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => freqs.reduce((s, f) => s + gain * 32767 * Math.sin((2 * Math.PI * f * i) / rate), 0));
}

/** Normalised correlation and level ratio (dB) of y against the reference over the middle. */
function compare(y: Int16Array, ref: Float64Array, rate: number, edgeMs = 5): { corr: number; gainDb: number } {
  const from = Math.round((rate * edgeMs) / 1000);
  const to = ref.length - from;
  let xy = 0, xx = 0, yy = 0;
  for (let i = from; i < to; i++) {
    xy += y[i] * ref[i];
    xx += ref[i] * ref[i];
    yy += y[i] * y[i];
  }
  return { corr: xy / Math.sqrt(xx * yy), gainDb: 10 * Math.log10(yy / xx) };
}

describe('convert: rate, codec and the tone survive', () => {
  it('mu-law 8 kHz -> PCM16 24 kHz (what the model hears): 440 Hz tone, in time with the input', async () => {
    const a = await convert('mulaw-8k.wav', '--rate', '24000');
    expect(a).toMatchObject({ sampleRate: 24000, channels: 1, codec: 'pcm16' });
    expect(a.data.length).toBe(1200); // 0.05 s
    const c = compare(pcmOf(a), soxSine(24000, 1200, [440], 0.5), 24000);
    // the delay is removed: a 2.2 ms lag would drop the correlation to cos(2 pi 440 * 0.0022) = 0.88
    expect(c.corr).toBeGreaterThan(0.998);
    expect(Math.abs(c.gainDb)).toBeLessThan(0.3);
  });

  // For a few samples sox's G.711 encoders pick the other of the two levels around the sample (sox
  // is not the G.191 code: e.g. its A-law rounds 494 up to 504, G.711's decision interval
  // [480, 496) gives 488). Elsewhere ours must agree; where not, the two must be neighbouring
  // levels (one step apart) and ours no more than that step from the sample.
  for (const [codec, sidecar, decode] of [['mulaw', 'mulaw-8k.ul', decodeMulaw], ['alaw', 'alaw-8k.al', decodeAlaw]] as const) {
    it(`PCM16 8 kHz -> ${codec} 8 kHz agrees with sox's ${codec} of the same file, or is nearer`, async () => {
      const a = await convert('pcm16-8k-mono.wav', '--rate', '8000', '--codec', codec);
      expect(a).toMatchObject({ sampleRate: 8000, channels: 1, codec });
      const orig = readWav(new Uint8Array(await readFile(join(FIX, 'pcm16-8k-mono.wav')))).data as Int16Array;
      const sox = new Uint8Array(await readFile(join(FIX, sidecar)));
      expect(a.data.length).toBe(sox.length);
      const ours = decode(a.data as Uint8Array);
      const theirs = decode(sox);
      let same = 0;
      for (let i = 0; i < sox.length; i++) {
        if (a.data[i] === sox[i]) same++;
        else {
          const step = Math.abs(ours[i] - theirs[i]);
          expect(step).toBeLessThanOrEqual(Math.max(32, Math.abs(theirs[i]) / 8));
          expect(Math.abs(orig[i] - ours[i])).toBeLessThanOrEqual(step);
        }
      }
      expect(same / sox.length).toBeGreaterThan(0.9);
      expect(compare(ours, soxSine(8000, 400, [440], 0.5), 8000).corr).toBeGreaterThan(0.999);
    });
  }

  it('PCM16 16 kHz -> A-law 8 kHz: the 1 kHz tone survives', async () => {
    const a = await convert('pcm16-16k-mono.wav', '--rate', '8000', '--codec', 'alaw');
    expect(a).toMatchObject({ sampleRate: 8000, codec: 'alaw' });
    expect(a.data.length).toBe(160); // 0.02 s
    const c = compare(pcmOf(a), soxSine(8000, 160, [1000], 0.5), 8000, 4);
    expect(c.corr).toBeGreaterThan(0.995);
    expect(Math.abs(c.gainDb)).toBeLessThan(0.5);
  });

  it('PCM16 8 kHz -> 24 kHz -> 8 kHz gives the original back (middle of the file, > 60 dB SNR)', async () => {
    const up = await convert('pcm16-8k-mono.wav', '--rate', '24000');
    const mid = join(dir, 'mid.wav');
    await writeFile(mid, writeWav(up));
    const back = join(dir, 'back.wav');
    expect((await run(mid, back, '--rate', '8000')).code).toBe(0);
    const b = readWav(new Uint8Array(await readFile(back)));
    const orig = readWav(new Uint8Array(await readFile(join(FIX, 'pcm16-8k-mono.wav'))));
    expect(b.data.length).toBe(orig.data.length);
    let sig = 0, err = 0;
    for (let i = 40; i < 360; i++) {
      sig += orig.data[i] ** 2;
      err += (b.data[i] - orig.data[i]) ** 2;
    }
    expect(10 * Math.log10(sig / err)).toBeGreaterThan(60);
  });

  it('stereo 8 kHz -> 16 kHz: channels averaged to mono (440 Hz left, 880 Hz right)', async () => {
    const a = await convert('pcm16-8k-stereo.wav', '--rate', '16000');
    expect(a).toMatchObject({ sampleRate: 16000, channels: 1, codec: 'pcm16' });
    expect(a.data.length).toBe(320);
    expect(compare(pcmOf(a), soxSine(16000, 320, [440, 880], 0.25), 16000, 4).corr).toBeGreaterThan(0.998);
  });

  it('same rate and codec copies the codes unchanged (mu-law 8 kHz -> mu-law 8 kHz)', async () => {
    const a = await convert('mulaw-8k.wav', '--rate', '8000', '--codec', 'mulaw');
    expect(Array.from(a.data)).toEqual(Array.from(new Uint8Array(await readFile(join(FIX, 'mulaw-8k.ul')))));
  });

  it('mu-law 8 kHz -> PCM16 8 kHz is the G.711 decode of the codes sox wrote', async () => {
    const a = await convert('mulaw-8k.wav', '--rate', '8000', '--codec', 'pcm16');
    expect(Array.from(a.data)).toEqual(Array.from(decodeMulaw(new Uint8Array(await readFile(join(FIX, 'mulaw-8k.ul'))))));
  });

  it('accepts --rate=N / --codec=C and prints what it did', async () => {
    const out = join(dir, 'eq.wav');
    const r = await run(join(FIX, 'alaw-8k.wav'), out, '--rate=16000', '--codec=pcm16');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/8000 Hz A-law, 0\.05 s.*16000 Hz 16-bit PCM, 0\.05 s/);
  });
});

describe('convert: clear errors, exit code 2, no output file', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no arguments', [], /missing IN\.wav and OUT\.wav/],
    ['no OUT', ['@mulaw-8k.wav'], /missing OUT\.wav/],
    ['no --rate', ['@mulaw-8k.wav', 'OUT'], /missing --rate/],
    ['--rate without a value', ['@mulaw-8k.wav', 'OUT', '--rate'], /--rate needs a value/],
    ['unsupported --rate', ['@mulaw-8k.wav', 'OUT', '--rate', '44100'], /--rate 44100 is not supported.*8000, 16000 or 24000/],
    ['non-numeric --rate', ['@mulaw-8k.wav', 'OUT', '--rate', 'fast'], /--rate fast is not supported/],
    ['unknown --codec', ['@mulaw-8k.wav', 'OUT', '--rate', '8000', '--codec', 'opus'], /--codec opus is not supported.*pcm16, mulaw or alaw/],
    ['mu-law above 8 kHz', ['@mulaw-8k.wav', 'OUT', '--rate', '16000', '--codec', 'mulaw'], /--codec mulaw needs --rate 8000/],
    ['A-law above 8 kHz', ['@mulaw-8k.wav', 'OUT', '--rate', '24000', '--codec', 'alaw'], /--codec alaw needs --rate 8000/],
    ['unknown option', ['@mulaw-8k.wav', 'OUT', '--rate', '8000', '--gain', '3'], /unknown option --gain/],
    ['three files', ['@mulaw-8k.wav', 'OUT', 'EXTRA', '--rate', '8000'], /too many arguments: EXTRA/],
    ['missing input file', ['@does-not-exist.wav', 'OUT', '--rate', '8000'], /does-not-exist\.wav: no such file/],
    ['float WAV', ['@float32.wav', 'OUT', '--rate', '8000'], /float WAV is not supported.*sox/],
    ['24-bit WAV', ['@pcm24.wav', 'OUT', '--rate', '8000'], /24-bit PCM WAV is not supported/],
    ['8-bit WAV', ['@pcm8.wav', 'OUT', '--rate', '8000'], /8-bit unsigned PCM WAV is not supported/],
    ['ADPCM WAV', ['@adpcm.wav', 'OUT', '--rate', '8000'], /ADPCM/],
  ];
  for (const [name, argv, msg] of cases) {
    it(name, async () => {
      const out = join(dir, `err-${name.replace(/\W+/g, '-')}.wav`);
      const args = argv.map((a) => (a.startsWith('@') ? join(FIX, a.slice(1)) : a === 'OUT' ? out : a));
      const r = await run(...args);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
      await expect(stat(out)).rejects.toThrow();
    });
  }

  it('an input rate the resamplers do not connect (48 kHz) is rejected with the sox command to fix it', async () => {
    const in48 = join(dir, 'in48k.wav');
    await writeFile(in48, writeWav({ sampleRate: 48000, channels: 1, codec: 'pcm16', data: new Int16Array(480) }));
    const out = join(dir, 'out48.wav');
    const r = await run(in48, out, '--rate', '24000');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/input sample rate 48000 Hz is not supported.*sox in\.wav -r 24000/);
    await expect(stat(out)).rejects.toThrow();
  });

  it('an unwritable OUT is exit code 1', async () => {
    const r = await run(join(FIX, 'mulaw-8k.wav'), join(dir, 'no', 'such', 'dir', 'x.wav'), '--rate', '8000');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot write/);
  });

  it('--help prints the usage and exits 0', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/usage: voicebridge convert IN\.wav OUT\.wav --rate/);
  });
});
