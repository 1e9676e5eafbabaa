// G.711 against the ITU-T G.191 STL: exhaustive vectors (scripts/gen-g711-vectors.mjs, a port of
// the STL g711.c) for every path, plus facts that do not depend on that script.
import { readFileSync } from 'node:fs';
import { alaw as refAlaw, mulaw as refMulaw } from 'alawmulaw';
import { describe, expect, it } from 'vitest';
import {
  alawCompress,
  alawDecodeBlock,
  alawEncodeBlock,
  alawExpand,
  decodeAlaw,
  decodeMulaw,
  encodeAlaw,
  encodeMulaw,
  ulawCompress,
  ulawDecodeBlock,
  ulawEncodeBlock,
  ulawExpand,
} from '../../src/dsp/g711.js';
import { bytesAt, loadDsp, samplesAt } from '../../src/dsp/wasm.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/g711/${name}`, import.meta.url));
const int16Fixture = (name: string) => {
  const b = fixture(name);
  const out = new Int16Array(b.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = b.readInt16LE(i * 2);
  return out;
};

// index x + 32768 for x = -32768..32767
const ULAW_COMPRESS = new Uint8Array(fixture('ulaw_compress.bin'));
const ALAW_COMPRESS = new Uint8Array(fixture('alaw_compress.bin'));
const ULAW_EXPAND = int16Fixture('ulaw_expand.bin');
const ALAW_EXPAND = int16Fixture('alaw_expand.bin');
const ALL_INPUTS = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);
const ALL_CODES = Uint8Array.from({ length: 256 }, (_, i) => i);

function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('fixtures', () => {
  it('have the documented sizes', () => {
    expect(ULAW_COMPRESS.length).toBe(65536);
    expect(ALAW_COMPRESS.length).toBe(65536);
    expect(ULAW_EXPAND.length).toBe(256);
    expect(ALAW_EXPAND.length).toBe(256);
  });
});

describe('G.711 facts independent of the vector script', () => {
  it('mu-law: silence is 0xFF, both zero codes decode to 0, full scale is +-32124 (G.711 Table 2: 8031 x 4)', () => {
    expect(ulawCompress(0)).toBe(0xff);
    expect(ulawCompress(-1)).toBe(0x7f); // the STL folds negatives with ~x, so -1 is "negative zero"
    expect(ulawExpand(0xff)).toBe(0);
    expect(ulawExpand(0x7f)).toBe(0);
    expect(ulawExpand(0x80)).toBe(32124);
    expect(ulawExpand(0x00)).toBe(-32124);
    expect(ulawCompress(32767)).toBe(0x80);
    expect(ulawCompress(-32768)).toBe(0x00);
  });

  it('A-law: 0xD5/0x55 are the +-8 steps around zero, full scale is +-32256 (G.711 Table 1: 4032 x 8)', () => {
    expect(alawCompress(0)).toBe(0xd5);
    expect(alawCompress(-1)).toBe(0x55);
    expect(alawExpand(0xd5)).toBe(8);
    expect(alawExpand(0x55)).toBe(-8);
    expect(alawExpand(0xaa)).toBe(32256);
    expect(alawExpand(0x2a)).toBe(-32256);
    expect(alawCompress(32767)).toBe(0xaa);
    expect(alawCompress(-32768)).toBe(0x2a);
  });

  it('decoders agree with the alawmulaw package on all 256 codes', () => {
    for (let c = 0; c < 256; c++) {
      expect(ulawExpand(c)).toBe(refMulaw.decodeSample(c) | 0); // it returns -0 for 0x7F
      expect(alawExpand(c)).toBe(refAlaw.decodeSample(c) | 0);
    }
  });

  it('encoders agree with alawmulaw on x >= 0 and fold negatives by 1s complement: code(x) = code(~x) & 0x7F', () => {
    // Together these pin every input: alawmulaw (2s complement) differs only for some x < 0.
    for (let x = 0; x < 32768; x++) {
      if (ulawCompress(x) !== (refMulaw.encodeSample(x) & 0xff)) throw new Error(`mu-law x=${x}`);
      if (alawCompress(x) !== (refAlaw.encodeSample(x) & 0xff)) throw new Error(`A-law x=${x}`);
    }
    for (let x = -32768; x < 0; x++) {
      if (ulawCompress(x) !== (ulawCompress(~x) & 0x7f)) throw new Error(`mu-law x=${x}`);
      if (alawCompress(x) !== (alawCompress(~x) & 0x7f)) throw new Error(`A-law x=${x}`);
    }
  });

  it('encode(decode(code)) returns the code (except mu-law 0x7F, the negative zero)', () => {
    for (let c = 0; c < 256; c++) {
      expect(ulawCompress(ulawExpand(c))).toBe(c === 0x7f ? 0xff : c);
      expect(alawCompress(alawExpand(c))).toBe(c);
    }
  });

  it('quantizing is monotonic in the input', () => {
    let pu = -Infinity;
    let pa = -Infinity;
    for (let x = -32768; x < 32768; x++) {
      const u = ulawExpand(ulawCompress(x));
      const a = alawExpand(alawCompress(x));
      if (u < pu || a < pa) throw new Error(`not monotonic at ${x}`);
      pu = u;
      pa = a;
    }
  });
});

describe('scalar exports are bit-exact with the G.191 vectors', () => {
  it('ulaw_compress / alaw_compress on all 65536 inputs', () => {
    const u = new Uint8Array(65536);
    const a = new Uint8Array(65536);
    for (let i = 0; i < 65536; i++) {
      u[i] = ulawCompress(i - 32768);
      a[i] = alawCompress(i - 32768);
    }
    expect(firstMismatch(u, ULAW_COMPRESS)).toBe(-1);
    expect(firstMismatch(a, ALAW_COMPRESS)).toBe(-1);
  });

  it('ulaw_expand / alaw_expand on all 256 codes', () => {
    expect(firstMismatch(Array.from(ALL_CODES, ulawExpand), ULAW_EXPAND)).toBe(-1);
    expect(firstMismatch(Array.from(ALL_CODES, alawExpand), ALAW_EXPAND)).toBe(-1);
  });

  it('take the input as int16 and the code as a byte', () => {
    expect(ulawCompress(0xffff)).toBe(ulawCompress(-1));
    expect(alawCompress(0x18000)).toBe(alawCompress(-32768));
    expect(ulawExpand(0x1ff)).toBe(ulawExpand(0xff));
    expect(alawExpand(-1)).toBe(alawExpand(0xff));
  });
});

describe('block kernels are bit-exact with the G.191 vectors', () => {
  const dsp = loadDsp();
  // room for 65536 samples + codes, plus slack for misaligned offsets
  const pcmPtr = dsp.dsp_alloc(65536 * 2 + 64);
  const codePtr = dsp.dsp_alloc(65536 + 64);

  const encoders = [
    ['mu-law', ulawEncodeBlock, ULAW_COMPRESS],
    ['A-law', alawEncodeBlock, ALAW_COMPRESS],
  ] as const;
  const decoders = [
    ['mu-law', ulawDecodeBlock, ULAW_EXPAND],
    ['A-law', alawDecodeBlock, ALAW_EXPAND],
  ] as const;

  for (const [name, encode, ref] of encoders) {
    it(`${name} encode: all inputs in one block, and in 15-sample blocks (table tail path)`, () => {
      samplesAt(pcmPtr, 65536).set(ALL_INPUTS);
      encode(pcmPtr, codePtr, 65536);
      expect(firstMismatch(bytesAt(codePtr, 65536), ref)).toBe(-1);

      bytesAt(codePtr, 65536).fill(0xaa);
      for (let off = 0; off < 65536; off += 15) {
        encode(pcmPtr + off * 2, codePtr + off, Math.min(15, 65536 - off));
      }
      expect(firstMismatch(bytesAt(codePtr, 65536), ref)).toBe(-1);
    });

    it(`${name} encode: unaligned pointers, odd lengths, no write past n`, () => {
      for (const [srcOff, dstOff, n] of [
        [1, 3, 65535],
        [3, 1, 1000],
        [0, 0, 17],
        [5, 7, 31],
        [0, 0, 0],
      ]) {
        const mem = new Uint8Array(dsp.memory.buffer);
        const src = pcmPtr + srcOff;
        const dst = codePtr + dstOff;
        const input = new Uint8Array(ALL_INPUTS.buffer, 0, n * 2);
        mem.set(input, src);
        mem.fill(0x5a, dst, dst + n + 16);
        encode(src, dst, n);
        const out = bytesAt(dst, n + 16);
        for (let i = 0; i < n; i++) {
          if (out[i] !== ref[i]) throw new Error(`mismatch at ${i} (offsets ${srcOff}/${dstOff}, n=${n})`);
        }
        for (let i = n; i < n + 16; i++) expect(out[i]).toBe(0x5a);
      }
    });
  }

  for (const [name, decode, ref] of decoders) {
    it(`${name} decode: all codes, repeated and misaligned, tails of every length`, () => {
      const n = 256 * 40;
      for (const [srcOff, dstOff] of [
        [0, 0],
        [1, 1],
        [7, 3],
      ]) {
        const src = codePtr + srcOff;
        const dst = pcmPtr + dstOff;
        const codes = bytesAt(src, n);
        for (let i = 0; i < n; i++) codes[i] = (i * 7) & 0xff; // 7 is odd: every code in every lane
        const mem = new Uint8Array(dsp.memory.buffer);
        mem.fill(0x5a, dst, dst + n * 2 + 32);
        decode(src, dst, n);
        const view = new DataView(dsp.memory.buffer);
        for (let i = 0; i < n; i++) {
          const got = view.getInt16(dst + i * 2, true);
          if (got !== ref[(i * 7) & 0xff]) throw new Error(`mismatch at ${i}`);
        }
        for (let i = n * 2; i < n * 2 + 32; i++) expect(mem[dst + i]).toBe(0x5a);
      }
      for (let len = 0; len <= 40; len++) {
        const codes = bytesAt(codePtr, len);
        for (let i = 0; i < len; i++) codes[i] = (i * 37 + len) & 0xff;
        decode(codePtr, pcmPtr, len);
        const out = samplesAt(pcmPtr, len);
        for (let i = 0; i < len; i++) expect(out[i]).toBe(ref[codes[i]]);
      }
    });
  }
});

describe('allocating helpers', () => {
  it('encodeMulaw/encodeAlaw match the vectors on inputs longer than the scratch chunk', () => {
    const pcm = new Int16Array(65536 * 2 + 123);
    for (let i = 0; i < pcm.length; i++) pcm[i] = ALL_INPUTS[(i * 40503) & 0xffff];
    const u = encodeMulaw(pcm);
    const a = encodeAlaw(pcm);
    expect(u.length).toBe(pcm.length);
    for (let i = 0; i < pcm.length; i++) {
      if (u[i] !== ULAW_COMPRESS[pcm[i] + 32768]) throw new Error(`mu-law at ${i}`);
      if (a[i] !== ALAW_COMPRESS[pcm[i] + 32768]) throw new Error(`A-law at ${i}`);
    }
  });

  it('decodeMulaw/decodeAlaw match the vectors on long inputs', () => {
    const codes = new Uint8Array(30001);
    for (let i = 0; i < codes.length; i++) codes[i] = (i * 13 + (i >> 8)) & 0xff;
    const u = decodeMulaw(codes);
    const a = decodeAlaw(codes);
    expect(u).toBeInstanceOf(Int16Array);
    for (let i = 0; i < codes.length; i++) {
      if (u[i] !== ULAW_EXPAND[codes[i]]) throw new Error(`mu-law at ${i}`);
      if (a[i] !== ALAW_EXPAND[codes[i]]) throw new Error(`A-law at ${i}`);
    }
  });

  it('handle empty input and do not grow memory on repeated calls', () => {
    expect(encodeMulaw(new Int16Array(0)).length).toBe(0);
    expect(decodeMulaw(new Uint8Array(0)).length).toBe(0);
    encodeMulaw(new Int16Array(100));
    const pages = loadDsp().memory_pages();
    for (let i = 0; i < 20; i++) decodeMulaw(encodeMulaw(new Int16Array(20000).fill(i * 100)));
    expect(loadDsp().memory_pages()).toBe(pages);
  });

  it('round-trips mu-law silence', () => {
    expect(Array.from(encodeMulaw(new Int16Array(160)))).toEqual(new Array(160).fill(0xff));
    expect(Array.from(decodeMulaw(new Uint8Array(160).fill(0xff)))).toEqual(new Array(160).fill(0));
  });
});
