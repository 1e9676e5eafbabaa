// G.711 mu-law and A-law, bit-exact with the ITU-T G.191 STL (src/g711/g711.c v3.01:
// ulaw_compress, ulaw_expand, alaw_compress, alaw_expand) on every 16-bit input and every code.
// The STL is what conformance is measured against; it folds negative inputs with the 1's
// complement (~x), which is where audioop/alawmulaw-style encoders (2's complement) differ.
//
// Three forms of the same rule, each checked against the STL vectors in test/fixtures/g711:
// - scalar exports: a direct transcription of the STL arithmetic (also used to fill the tables);
// - lookup tables, filled once at instantiation: the STL encoders only look at x >> 2 (mu-law,
//   14 bits) and x >> 4 (A-law; the STL drops 4 bits although G.711 A-law nominally has 13),
//   and ~(x >> k) == (~x) >> k, so a table indexed by the shifted sample is exact;
// - SIMD block kernels: wasm SIMD has no gather, so the bulk of a block uses the same
//   arithmetic 8/16 lanes at a time (encoders find segment and mantissa with an int->f32
//   conversion; decoders do per-lane shifts as multiplies by a power of two fetched with
//   i8x16.swizzle). Tails of fewer than 16 samples use the tables.

// ---------------------------------------------------------------------------------------------
// Scalar reference (STL arithmetic). Inputs: x is taken as int16 (low 16 bits, sign-extended),
// code as its low 8 bits.

export function ulaw_compress(x: i32): i32 {
  x = <i32>(<i16>x);
  let absno = (x < 0 ? (~x >> 2) : (x >> 2)) + 33; // 33: offset between A- and mu-law thresholds
  if (absno > 0x1fff) absno = 0x1fff;
  let i = absno >> 6;
  let segno = 1;
  while (i != 0) {
    segno++;
    i >>= 1;
  }
  const high = 8 - segno;
  const low = 15 - ((absno >> segno) & 15);
  let code = (high << 4) | low;
  if (x >= 0) code |= 0x80;
  return code;
}

export function ulaw_expand(code: i32): i32 {
  code &= 0xff;
  const sign = code < 0x80 ? -1 : 1;
  const m = ~code;
  const exponent = (m >> 4) & 7;
  const mantissa = m & 15;
  const step = 4 << (exponent + 1);
  return sign * ((0x80 << exponent) + step * mantissa + (step >> 1) - 4 * 33);
}

export function alaw_compress(x: i32): i32 {
  x = <i32>(<i16>x);
  let ix = x < 0 ? (~x >> 4) : (x >> 4);
  if (ix > 15) {
    let iexp = 1;
    while (ix > 16 + 15) {
      ix >>= 1;
      iexp++;
    }
    ix -= 16;
    ix += iexp << 4;
  }
  if (x >= 0) ix |= 0x80;
  return ix ^ 0x55;
}

export function alaw_expand(code: i32): i32 {
  code &= 0xff;
  const ix = (code ^ 0x55) & 0x7f;
  const iexp = ix >> 4;
  let mant = ix & 15;
  if (iexp > 0) mant += 16;
  mant = (mant << 4) + 8;
  if (iexp > 1) mant <<= iexp - 1;
  return code > 127 ? mant : -mant;
}

// ---------------------------------------------------------------------------------------------
// Tables (static memory, filled by the module's start function).

const ULAW_ENC: usize = memory.data(16384, 16); // u8 by (x >> 2) & 0x3fff
const ALAW_ENC: usize = memory.data(4096, 16); // u8 by (x >> 4) & 0xfff
const ULAW_DEC: usize = memory.data(512, 16); // i16 by code
const ALAW_DEC: usize = memory.data(512, 16); // i16 by code

function initTables(): void {
  for (let i = 0; i < 16384; i++) {
    store<u8>(ULAW_ENC + <usize>i, <u8>ulaw_compress(((i << 18) >> 16)));
  }
  for (let i = 0; i < 4096; i++) {
    store<u8>(ALAW_ENC + <usize>i, <u8>alaw_compress(((i << 20) >> 16)));
  }
  for (let c = 0; c < 256; c++) {
    store<i16>(ULAW_DEC + (<usize>c << 1), <i16>ulaw_expand(c));
    store<i16>(ALAW_DEC + (<usize>c << 1), <i16>alaw_expand(c));
  }
}
initTables();

// ---------------------------------------------------------------------------------------------
// SIMD lanes. Byte tables for i8x16.swizzle, indexed by a 3-bit exponent.

// 1 << e: mu-law decode
const POW_ULAW_DEC = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0);
// 1 << max(e - 1, 0): A-law decode
const POW_ALAW_DEC = i8x16(1, 1, 2, 4, 8, 16, 32, 64, 0, 0, 0, 0, 0, 0, 0, 0);
// 2 * leading one + half step (in units of 8): A-law decode
const LEAD_ALAW_DEC = i8x16(1, 33, 33, 33, 33, 33, 33, 33, 0, 0, 0, 0, 0, 0, 0, 0);

// Both encoders need the segment (a bit length) and the 4 bits below the leading one. An int to
// f32 conversion computes exactly that: for 32 <= a < 2^24 the f32 bit pattern shifted right by
// 19 is (biased exponent << 4) | the top 4 fraction bits. The mu-law magnitude is always >= 33,
// so the segment is exponent - 5 and the mantissa is those fraction bits.

// @ts-ignore: decorator
@inline
function expMant(lo: v128, hi: v128): v128 {
  const fl = i32x4.shr_u(f32x4.convert_i32x4_u(lo), 19);
  const fh = i32x4.shr_u(f32x4.convert_i32x4_u(hi), 19);
  return i16x8.narrow_i32x4_u(fl, fh);
}

// @ts-ignore: decorator
@inline
function ulawEnc8(x: v128): v128 {
  const neg = i16x8.shr_s(x, 15);
  // absno = (x < 0 ? ~x : x) >> 2 + 33, limited to 0x1fff
  let a = i16x8.add(i16x8.shr_s(v128.xor(x, neg), 2), i16x8.splat(33));
  a = i16x8.min_s(a, i16x8.splat(0x1fff));
  // v = (segno - 1) << 4 | (absno >> segno) & 15
  const v = i16x8.sub(
    expMant(i32x4.extend_low_i16x8_u(a), i32x4.extend_high_i16x8_u(a)),
    i16x8.splat((127 + 5) << 4),
  );
  // code = (8 - segno) << 4 | (15 - mantissa), sign bit set for x >= 0
  return v128.xor(v, v128.or(i16x8.splat(0x7f), v128.andnot(i16x8.splat(0x80), neg)));
}

// @ts-ignore: decorator
@inline
function alawEnc8(x: v128): v128 {
  const neg = i16x8.shr_s(x, 15);
  const ix = i16x8.shr_s(v128.xor(x, neg), 4); // 0..2047
  // for ix >= 16: exponent = bit length(ix) - 4, mantissa = the 4 bits below the leading one;
  // for ix < 32 the STL code is ix itself (exponent 0, or 1 with mantissa ix - 16)
  const f = i16x8.sub(
    expMant(i32x4.extend_low_i16x8_u(ix), i32x4.extend_high_i16x8_u(ix)),
    i16x8.splat((127 + 3) << 4),
  );
  const v = v128.bitselect(ix, f, i16x8.lt_s(ix, i16x8.splat(32)));
  return v128.xor(v128.or(v, v128.andnot(i16x8.splat(0x80), neg)), i16x8.splat(0x55));
}

// ---------------------------------------------------------------------------------------------
// Block kernels. src/dst need no alignment; n <= 0 does nothing. Output equals the scalar
// functions element by element.

/** Encode n int16 samples at src into n mu-law bytes at dst. */
export function ulaw_encode_block(src: usize, dst: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 16 <= n; i += 16) {
    const p = src + (<usize>i << 1);
    const lo = ulawEnc8(v128.load(p));
    const hi = ulawEnc8(v128.load(p, 16));
    v128.store(dst + <usize>i, i8x16.narrow_i16x8_u(lo, hi));
  }
  for (; i < n; i++) {
    const x = <i32>load<i16>(src + (<usize>i << 1));
    store<u8>(dst + <usize>i, load<u8>(ULAW_ENC + <usize>((x >> 2) & 0x3fff)));
  }
}

/** Decode n mu-law bytes at src into n int16 samples at dst. */
export function ulaw_decode_block(src: usize, dst: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 16 <= n; i += 16) {
    const nc = v128.not(v128.load(src + <usize>i));
    const e = v128.and(i8x16.shr_u(nc, 4), i8x16.splat(7));
    const pow = i8x16.swizzle(POW_ULAW_DEC, e);
    // ((mant << 3) + 0x84) << e - 0x84; base <= 252 fits a byte, product <= 32256
    const base = i8x16.add(i8x16.shl(v128.and(nc, i8x16.splat(15)), 3), i8x16.splat(<i8>0x84));
    const sgn = i8x16.shr_s(nc, 7); // -1 where the code's sign bit is 0 (negative)
    const bias = i16x8.splat(0x84);
    const magLo = i16x8.sub(i16x8.extmul_low_i8x16_u(base, pow), bias);
    const magHi = i16x8.sub(i16x8.extmul_high_i8x16_u(base, pow), bias);
    const sLo = i16x8.extend_low_i8x16_s(sgn);
    const sHi = i16x8.extend_high_i8x16_s(sgn);
    const p = dst + (<usize>i << 1);
    v128.store(p, i16x8.sub(v128.xor(magLo, sLo), sLo));
    v128.store(p, i16x8.sub(v128.xor(magHi, sHi), sHi), 16);
  }
  for (; i < n; i++) {
    const c = <usize>load<u8>(src + <usize>i);
    store<i16>(dst + (<usize>i << 1), load<i16>(ULAW_DEC + (c << 1)));
  }
}

/** Encode n int16 samples at src into n A-law bytes at dst. */
export function alaw_encode_block(src: usize, dst: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 16 <= n; i += 16) {
    const p = src + (<usize>i << 1);
    const lo = alawEnc8(v128.load(p));
    const hi = alawEnc8(v128.load(p, 16));
    v128.store(dst + <usize>i, i8x16.narrow_i16x8_u(lo, hi));
  }
  for (; i < n; i++) {
    const x = <i32>load<i16>(src + (<usize>i << 1));
    store<u8>(dst + <usize>i, load<u8>(ALAW_ENC + <usize>((x >> 4) & 0xfff)));
  }
}

/** Decode n A-law bytes at src into n int16 samples at dst. */
export function alaw_decode_block(src: usize, dst: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 16 <= n; i += 16) {
    const c = v128.load(src + <usize>i);
    const ix = v128.and(v128.xor(c, i8x16.splat(0x55)), i8x16.splat(0x7f));
    const e = i8x16.shr_u(ix, 4);
    // ((mant + lead) << 4 + 8) << max(e - 1, 0) == ((2 * (mant + lead) + 1) << max(e - 1, 0)) << 3
    const base = i8x16.add(
      i8x16.shl(v128.and(ix, i8x16.splat(15)), 1),
      i8x16.swizzle(LEAD_ALAW_DEC, e),
    );
    const pow = i8x16.swizzle(POW_ALAW_DEC, e);
    const sgn = i8x16.shr_s(v128.not(c), 7); // -1 where the code's top bit is 0 (negative)
    const magLo = i16x8.shl(i16x8.extmul_low_i8x16_u(base, pow), 3);
    const magHi = i16x8.shl(i16x8.extmul_high_i8x16_u(base, pow), 3);
    const sLo = i16x8.extend_low_i8x16_s(sgn);
    const sHi = i16x8.extend_high_i8x16_s(sgn);
    const p = dst + (<usize>i << 1);
    v128.store(p, i16x8.sub(v128.xor(magLo, sLo), sLo));
    v128.store(p, i16x8.sub(v128.xor(magHi, sHi), sHi), 16);
  }
  for (; i < n; i++) {
    const c = <usize>load<u8>(src + <usize>i);
    store<i16>(dst + (<usize>i << 1), load<i16>(ALAW_DEC + (c << 1)));
  }
}
