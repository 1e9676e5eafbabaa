import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { downmixToMono, readWav, WavError, writeWav } from '../../src/audio/wav.js';

const FIX = fileURLToPath(new URL('../fixtures/wav/', import.meta.url));
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(FIX + name));
// Sidecars written by sox itself (scripts/make-wav-fixtures.sh): the reference for content.
const s16 = (name: string): Int16Array => {
  const b = readFileSync(FIX + name);
  const out = new Int16Array(b.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = b.readInt16LE(2 * i);
  return out;
};

// A WAV assembled by hand from chunks, independent of writeWav.
function riff(...chunks: [string, Uint8Array][]): Uint8Array {
  const parts: Buffer[] = [];
  for (const [id, body] of chunks) {
    const h = Buffer.alloc(8);
    h.write(id, 0, 'latin1');
    h.writeUInt32LE(body.length, 4);
    parts.push(h, Buffer.from(body));
    if (body.length & 1) parts.push(Buffer.alloc(1));
  }
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(4 + body.length, 4);
  head.write('WAVE', 8, 'latin1');
  return new Uint8Array(Buffer.concat([head, body]));
}
function fmt(tag: number, channels: number, rate: number, bits: number, extra?: Buffer): Uint8Array {
  const b = Buffer.alloc(16);
  const align = (channels * bits) / 8;
  b.writeUInt16LE(tag, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE(rate * align, 8);
  b.writeUInt16LE(align, 12);
  b.writeUInt16LE(bits, 14);
  return new Uint8Array(extra ? Buffer.concat([b, extra]) : b);
}
const le16 = (...v: number[]): Uint8Array => {
  const b = Buffer.alloc(v.length * 2);
  v.forEach((x, i) => b.writeInt16LE(x, 2 * i));
  return new Uint8Array(b);
};

describe('readWav on sox-made files', () => {
  it('reads 8 kHz mono PCM16 sample-exactly', () => {
    const w = readWav(fixture('pcm16-8k-mono.wav'));
    expect(w).toMatchObject({ sampleRate: 8000, channels: 1, codec: 'pcm16' });
    expect(w.data).toEqual(s16('pcm16-8k-mono.s16le'));
    expect(w.data.length).toBe(400);
  });

  it('reads PCM16 at other rates', () => {
    const w = readWav(fixture('pcm16-16k-mono.wav'));
    expect(w).toMatchObject({ sampleRate: 16000, channels: 1, codec: 'pcm16' });
    expect(w.data).toEqual(s16('pcm16-16k-mono.s16le'));
  });

  it('downmixes stereo PCM16 to mono by averaging, or keeps it interleaved on request', () => {
    const raw = s16('pcm16-8k-stereo.s16le');
    const kept = readWav(fixture('pcm16-8k-stereo.wav'), { channels: 'keep' });
    expect(kept).toMatchObject({ channels: 2, codec: 'pcm16' });
    expect(kept.data).toEqual(raw);
    const mono = readWav(fixture('pcm16-8k-stereo.wav'));
    expect(mono.channels).toBe(1);
    expect(mono.data.length).toBe(raw.length / 2);
    for (let i = 0; i < mono.data.length; i++) {
      expect(Math.abs(mono.data[i] - (raw[2 * i] + raw[2 * i + 1]) / 2)).toBeLessThanOrEqual(0.5);
    }
  });

  it('reads WAVE_FORMAT_EXTENSIBLE with a PCM subformat', () => {
    const raw = s16('pcm16-8k-3ch-extensible.s16le');
    const kept = readWav(fixture('pcm16-8k-3ch-extensible.wav'), { channels: 'keep' });
    expect(kept).toMatchObject({ sampleRate: 8000, channels: 3, codec: 'pcm16' });
    expect(kept.data).toEqual(raw);
  });

  it('reads mu-law and A-law as their 8-bit codes', () => {
    const mu = readWav(fixture('mulaw-8k.wav'));
    expect(mu).toMatchObject({ sampleRate: 8000, channels: 1, codec: 'mulaw' });
    expect(mu.data).toEqual(new Uint8Array(readFileSync(FIX + 'mulaw-8k.ul')));
    const a = readWav(fixture('alaw-8k.wav'));
    expect(a).toMatchObject({ sampleRate: 8000, channels: 1, codec: 'alaw' });
    expect(a.data).toEqual(new Uint8Array(readFileSync(FIX + 'alaw-8k.al')));
  });

  it('skips a LIST chunk between fmt and data', () => {
    const w = readWav(fixture('pcm16-8k-list.wav'));
    expect(w.data).toEqual(s16('pcm16-8k-mono.s16le'));
  });

  it('rejects float, 24-bit, 8-bit and ADPCM files with messages saying what they are', () => {
    expect(() => readWav(fixture('float32.wav'))).toThrow(/32-bit IEEE float WAV is not supported.*sox/);
    expect(() => readWav(fixture('pcm24.wav'))).toThrow(/24-bit PCM WAV is not supported/);
    expect(() => readWav(fixture('pcm8.wav'))).toThrow(/8-bit unsigned PCM WAV is not supported/);
    expect(() => readWav(fixture('adpcm.wav'))).toThrow(/format tag 0x0002 \(Microsoft ADPCM\)/);
  });
});

describe('readWav on hand-built buffers', () => {
  it('reads PCM16 and skips unknown chunks before and after data, including odd-sized ones', () => {
    const w = readWav(riff(['junk', new Uint8Array(3)], ['fmt ', fmt(1, 1, 8000, 16)], ['data', le16(1, -2, 32767, -32768)], ['LIST', new Uint8Array(5)]));
    expect(Array.from(w.data)).toEqual([1, -2, 32767, -32768]);
  });

  it('ignores a cut-off trailing chunk after the audio', () => {
    const full = riff(['fmt ', fmt(1, 1, 8000, 16)], ['data', le16(7, 8)], ['LIST', new Uint8Array(40)]);
    const w = readWav(full.subarray(0, full.length - 20));
    expect(Array.from(w.data)).toEqual([7, 8]);
  });

  it('reads the streaming placeholder data size 0xFFFFFFFF as "to the end of the file"', () => {
    const b = riff(['fmt ', fmt(1, 1, 8000, 16)], ['data', le16(3, 4, 5)]);
    new DataView(b.buffer).setUint32(b.length - 6 - 4, 0xffffffff, true);
    expect(Array.from(readWav(b).data)).toEqual([3, 4, 5]);
  });

  it('reads extensible mu-law', () => {
    const ext = Buffer.alloc(24);
    ext.writeUInt16LE(22, 0); // cbSize
    ext.writeUInt16LE(8, 2); // valid bits
    ext.writeUInt32LE(4, 4); // channel mask
    ext.writeUInt16LE(7, 8); // subformat: mu-law
    Buffer.from([0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]).copy(ext, 10);
    const w = readWav(riff(['fmt ', fmt(0xfffe, 1, 8000, 8, ext)], ['data', new Uint8Array([0xff, 0x7f, 0x00])]));
    expect(w).toMatchObject({ codec: 'mulaw', sampleRate: 8000 });
    expect(Array.from(w.data)).toEqual([0xff, 0x7f, 0x00]);
  });

  it('rejects truncated files', () => {
    const good = riff(['fmt ', fmt(1, 1, 8000, 16)], ['data', le16(1, 2, 3, 4)]);
    expect(() => readWav(good.subarray(0, good.length - 2))).toThrow(/truncated WAV: data chunk declares 8 bytes but only 6 remain/);
    expect(() => readWav(good.subarray(0, 30))).toThrow(/truncated WAV: "fmt " chunk/);
    expect(() => readWav(good.subarray(0, 36))).toThrow(/no data chunk/);
    expect(() => readWav(good.subarray(0, 8))).toThrow(/only 8 bytes/);
    const odd = riff(['fmt ', fmt(1, 1, 8000, 16)], ['data', new Uint8Array(3)]);
    expect(() => readWav(odd)).toThrow(/not a whole number of 2-byte frames/);
  });

  it('rejects files that are not RIFF/WAVE', () => {
    expect(() => readWav(new TextEncoder().encode('ID3\u0004 not a wav at all'))).toThrow(/not a WAV file: starts with "ID3/);
    const b = riff(['fmt ', fmt(1, 1, 8000, 16)], ['data', le16(0)]);
    b.set(new TextEncoder().encode('AVI '), 8);
    expect(() => readWav(b)).toThrow(/form type is "AVI "/);
    b.set(new TextEncoder().encode('RIFX'), 0);
    expect(() => readWav(b)).toThrow(/big-endian/);
  });

  it('rejects multi-channel G.711 unless asked to keep channels', () => {
    const b = riff(['fmt ', fmt(7, 2, 8000, 8)], ['data', new Uint8Array([1, 2, 3, 4])]);
    expect(() => readWav(b)).toThrow(WavError);
    expect(readWav(b, { channels: 'keep' })).toMatchObject({ channels: 2, codec: 'mulaw' });
  });
});

describe('writeWav', () => {
  it('writes a canonical 44-byte-header PCM16 WAV', () => {
    const out = writeWav({ sampleRate: 8000, channels: 1, codec: 'pcm16', data: new Int16Array([1, -1]) });
    const expected = riff(['fmt ', fmt(1, 1, 8000, 16)], ['data', le16(1, -1)]);
    expect(out).toEqual(expected);
  });

  it('round-trips PCM16 at any rate and channel count', () => {
    const data = Int16Array.from({ length: 300 }, (_, i) => ((i * 7919) % 65536) - 32768);
    for (const [rate, ch] of [[8000, 1], [24000, 1], [16000, 2], [44100, 3]] as const) {
      const w = readWav(writeWav({ sampleRate: rate, channels: ch, codec: 'pcm16', data }), { channels: 'keep' });
      expect(w).toEqual({ sampleRate: rate, channels: ch, codec: 'pcm16', data });
    }
  });

  it('round-trips mu-law and A-law with odd lengths (padding byte) and a fact chunk', () => {
    const data = Uint8Array.from({ length: 161 }, (_, i) => (i * 37) & 255);
    for (const codec of ['mulaw', 'alaw'] as const) {
      const bytes = writeWav({ sampleRate: 8000, channels: 1, codec, data });
      expect(bytes.length % 2).toBe(0);
      expect(Buffer.from(bytes).indexOf('fact')).toBeGreaterThan(0);
      expect(readWav(bytes)).toEqual({ sampleRate: 8000, channels: 1, codec, data });
    }
  });

  it('rewrites the sox mu-law fixture losslessly', () => {
    const mu = readWav(fixture('mulaw-8k.wav'));
    const rewritten = readWav(writeWav(mu));
    expect(rewritten).toEqual(mu);
  });

  it('rejects mismatched data types and bad shapes', () => {
    expect(() => writeWav({ sampleRate: 8000, channels: 1, codec: 'pcm16', data: new Uint8Array(2) as unknown as Int16Array })).toThrow(/Int16Array/);
    expect(() => writeWav({ sampleRate: 0, channels: 1, codec: 'pcm16', data: new Int16Array(2) })).toThrow(/sample rate/);
    expect(() => writeWav({ sampleRate: 8000, channels: 2, codec: 'pcm16', data: new Int16Array(3) })).toThrow(/whole number/);
  });
});

describe('downmixToMono', () => {
  it('averages with rounding half away from zero', () => {
    expect(Array.from(downmixToMono(new Int16Array([1, 2, -1, -2, 32767, 32767, -32768, -32768]), 2))).toEqual([2, -2, 32767, -32768]);
  });
});
