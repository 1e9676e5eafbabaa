// Base64 kernels against RFC 4648 vectors and Node's Buffer, including strictness on invalid
// input in both the SIMD blocks and the scalar tail/last quartet.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  b64Decode,
  b64DecodedMax,
  b64Encode,
  b64EncodedLen,
  decodeBase64,
  encodeBase64,
} from '../../src/dsp/base64.js';
import { loadDsp } from '../../src/dsp/wasm.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const dsp = loadDsp();
const SRC = dsp.dsp_alloc(70000);
const DST = dsp.dsp_alloc(70000);
const mem = () => new Uint8Array(dsp.memory.buffer);

/** b64_encode of `data` placed at SRC + srcOff, output at DST + dstOff. */
function encodeAt(data: Uint8Array, srcOff = 0, dstOff = 0): string {
  mem().set(data, SRC + srcOff);
  const w = b64Encode(SRC + srcOff, data.length, DST + dstOff);
  expect(w).toBe(b64EncodedLen(data.length));
  return Buffer.from(mem().subarray(DST + dstOff, DST + dstOff + w)).toString('latin1');
}

/** b64_decode of latin1 `text` placed at SRC + srcOff; null for -1. */
function decodeAt(text: string | Uint8Array, srcOff = 0, dstOff = 0): Uint8Array | null {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  mem().set(bytes, SRC + srcOff);
  const w = b64Decode(SRC + srcOff, bytes.length, DST + dstOff);
  if (w < 0) {
    expect(w).toBe(-1);
    return null;
  }
  return mem().slice(DST + dstOff, DST + dstOff + w);
}

describe('RFC 4648 section 10 vectors', () => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'Zg=='],
    ['fo', 'Zm8='],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg=='],
    ['fooba', 'Zm9vYmE='],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, coded] of vectors) {
    it(`"${plain}" <-> "${coded}"`, () => {
      expect(encodeAt(Buffer.from(plain))).toBe(coded);
      expect(Buffer.from(decodeAt(coded)!).toString()).toBe(plain);
    });
  }
});

describe('equal to Node Buffer on valid input', () => {
  it('random bytes, lengths 0..2000, unaligned pointers (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 2000 }),
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 0, max: 15 }),
        (data, srcOff, dstOff) => {
          const ref = Buffer.from(data).toString('base64');
          expect(encodeAt(data, srcOff, dstOff)).toBe(ref);
          const back = decodeAt(ref, srcOff, dstOff);
          expect(back).not.toBeNull();
          expect(Buffer.from(back!).equals(Buffer.from(data))).toBe(true);
        },
      ),
      { numRuns: 300, seed: 4648 },
    );
  });

  it('every length 0..100 (each SIMD/tail split)', () => {
    for (let n = 0; n <= 100; n++) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 97 + n * 13) & 0xff);
      const ref = Buffer.from(data).toString('base64');
      expect(encodeAt(data)).toBe(ref);
      expect(Buffer.from(decodeAt(ref)!).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('decodes all 64 characters in every SIMD lane', () => {
    // 64 chars shifted by k put every character at every position mod 16
    for (let k = 0; k < 16; k++) {
      const text = (ALPHABET.slice(k) + ALPHABET.slice(0, k)).repeat(2) + 'AAAA';
      expect(Buffer.from(decodeAt(text)!).equals(Buffer.from(text, 'base64'))).toBe(true);
    }
  });

  it('does not write past the decoded length', () => {
    for (const n of [3, 12, 13, 14, 48, 100]) {
      const data = Uint8Array.from({ length: n }, (_, i) => i + 1);
      const text = Buffer.from(data).toString('base64');
      mem().set(Buffer.from(text, 'latin1'), SRC);
      mem().fill(0xee, DST, DST + n + 32);
      expect(b64Decode(SRC, text.length, DST)).toBe(n);
      expect(Array.from(mem().subarray(DST + n, DST + n + 32))).toEqual(new Array(32).fill(0xee));
    }
  });
});

describe('output bounds', () => {
  it('neither direction writes past its output, for every length 0..300 (the SIMD stores)', () => {
    for (let n = 0; n <= 300; n++) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 131 + n * 7) & 0xff);
      const text = Buffer.from(data).toString('base64');
      mem().set(data, SRC);
      mem().fill(0xee, DST, DST + text.length + 48);
      expect(b64Encode(SRC, n, DST)).toBe(text.length);
      expect(Buffer.from(mem().subarray(DST, DST + text.length)).toString('latin1')).toBe(text);
      expect(mem().subarray(DST + text.length, DST + text.length + 48).every((b) => b === 0xee), `encode ${n}`).toBe(true);
      mem().set(Buffer.from(text, 'latin1'), SRC);
      mem().fill(0xee, DST, DST + n + 48);
      expect(b64Decode(SRC, text.length, DST)).toBe(n);
      expect(Buffer.from(mem().subarray(DST, DST + n)).equals(Buffer.from(data))).toBe(true);
      expect(mem().subarray(DST + n, DST + n + 48).every((b) => b === 0xee), `decode ${n}`).toBe(true);
    }
  });
});

describe('strict decoding rejects invalid input', () => {
  const valid = Buffer.from(Uint8Array.from({ length: 60 }, (_, i) => i * 5)).toString('base64'); // 80 chars, no padding

  it('every non-alphabet byte at a SIMD position and at tail positions', () => {
    const alphabet = new Set(Array.from(ALPHABET, (c) => c.charCodeAt(0)));
    for (const pos of [0, 5, 15, 16, 33, 63, 64, 70, 76, 79]) {
      for (let b = 0; b < 256; b++) {
        if (b === 0x3d && pos >= 78) continue; // '=' there is padding: see the padding tests
        const bytes = Buffer.from(valid, 'latin1');
        bytes[pos] = b;
        const got = decodeAt(bytes);
        if (alphabet.has(b)) {
          expect(got, `byte ${b} at ${pos}`).not.toBeNull();
        } else {
          expect(got, `byte ${b} at ${pos}`).toBeNull();
        }
      }
    }
  });

  it('bad lengths', () => {
    for (const t of ['A', 'AB', 'ABC', 'ABCDE', valid.slice(0, 79), valid + 'A']) expect(decodeAt(t)).toBeNull();
  });

  it('bad padding', () => {
    for (const t of [
      '====',
      'A===',
      'AB=C',
      '=ABC',
      'QQ==QQ==',
      'QUI=QUJD',
      valid.slice(0, 16) + 'QQ==' + valid.slice(20), // padding inside a SIMD block
      valid + '====',
      'QQ=',
      'QQ===',
    ]) {
      expect(decodeAt(t), t).toBeNull();
    }
  });

  it('non-canonical padding bits', () => {
    expect(decodeAt('QQ==')).not.toBeNull();
    expect(decodeAt('QR==')).toBeNull(); // low 4 bits of the second char must be 0
    expect(decodeAt('QUI=')).not.toBeNull();
    expect(decodeAt('QUJ=')).toBeNull(); // low 2 bits of the third char must be 0
  });

  it('whitespace and line breaks', () => {
    expect(decodeAt('QUJD QUJD')).toBeNull();
    expect(decodeAt('QUJD\nQUJD')).toBeNull();
    expect(decodeAt(valid.slice(0, 40) + '\r\n' + valid.slice(42))).toBeNull();
  });

  it('accepts exactly what Buffer round-trips, with the same bytes (property)', () => {
    const charArb = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n.'.split(''));
    const mutated = fc
      .tuple(fc.uint8Array({ maxLength: 200 }), fc.nat(), charArb)
      .map(([data, at, ch]) => {
        const s = Buffer.from(data).toString('base64');
        if (s.length === 0) return ch.repeat(4);
        const k = at % s.length;
        return s.slice(0, k) + ch + s.slice(k + 1);
      });
    const random = fc.array(charArb, { maxLength: 100 }).map((a) => a.join(''));
    fc.assert(
      fc.property(fc.oneof(mutated, random), (text) => {
        const got = decodeAt(text);
        const ref = Buffer.from(text, 'base64');
        const canonical = ref.toString('base64') === text;
        if (canonical) {
          expect(got).not.toBeNull();
          expect(Buffer.from(got!).equals(ref)).toBe(true);
        } else {
          expect(got).toBeNull();
        }
      }),
      { numRuns: 2000, seed: 20 },
    );
  });
});

describe('allocating helpers', () => {
  it('encodeBase64/decodeBase64 match Buffer across scratch chunks', () => {
    const data = Uint8Array.from({ length: 50_001 }, (_, i) => (i * 31 + (i >> 7)) & 0xff);
    const text = encodeBase64(data);
    expect(text).toBe(Buffer.from(data).toString('base64'));
    expect(Buffer.from(decodeBase64(text)!).equals(Buffer.from(data))).toBe(true);
  });

  it('decodeBase64 rejects padding at a chunk boundary and non-ASCII look-alikes', () => {
    const chunkChars = 16384;
    const bad = 'A'.repeat(chunkChars - 4) + 'QQ==' + 'AAAA';
    expect(Buffer.from(bad, 'base64').toString('base64')).not.toBe(bad);
    expect(decodeBase64(bad)).toBeNull();
    expect(decodeBase64('QUJ\u0144')).toBeNull(); // U+0144 would be 'D' after a latin1 cut
    expect(decodeBase64('')!.length).toBe(0);
  });

  it('sizes', () => {
    expect([0, 1, 2, 3, 4, 160].map(b64EncodedLen)).toEqual([0, 4, 4, 4, 8, 216]);
    expect([0, 4, 8, 216].map(b64DecodedMax)).toEqual([0, 3, 6, 162]);
  });
});
