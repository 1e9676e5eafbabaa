// Base64, standard alphabet (RFC 4648 section 4) with padding: Twilio media payloads and the
// model's audio are base64 of raw audio, so every frame passes through here both ways.
//
// SIMD: 12 bytes <-> 16 characters per step (Mula/Lemire's method adapted to wasm SIMD, which
// has i8x16.swizzle for the byte shuffles and lookups, but no maddubs/mulhi: shifts and
// i32x4.dot_i16x8_s stand in). Scalar tables handle the tails and the padded last quartet.
//
// Decoding is strict: the length must be a multiple of 4, only the last quartet may carry '='
// ("xx==" or "xxx="), the bits that padding discards must be zero (canonical encoding), and no
// whitespace or other characters are allowed. Invalid input returns -1; dst may then hold
// partial output.

const ALPHABET: usize = memory.data<u8>([
  65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88,
  89, 90, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114,
  115, 116, 117, 118, 119, 120, 121, 122, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 43, 47,
]);

// 6-bit value of each byte, 0xff for bytes outside the alphabet ('=' included)
const DECODE: usize = memory.data(256, 16);

function initDecode(): void {
  memory.fill(DECODE, 0xff, 256);
  for (let i = 0; i < 64; i++) store<u8>(DECODE + <usize>load<u8>(ALPHABET + <usize>i), <u8>i);
}
initDecode();

const PAD: u8 = 61; // '='

// ---------------------------------------------------------------------------------------------
// Encode

/** Base64 characters for n bytes: 4 * ceil(n / 3). */
export function b64_encoded_len(n: i32): i32 {
  return ((n + 2) / 3) << 2;
}

/**
 * Encodes n bytes at src as base64 with padding into dst (room for b64_encoded_len(n) bytes).
 * Returns the number of characters written.
 */
export function b64_encode(src: usize, n: i32, dst: usize): i32 {
  let i: i32 = 0;
  let o: usize = dst;
  // Each step reads 16 bytes but consumes 12.
  for (; i + 16 <= n; i += 12) {
    const inp = v128.load(src + <usize>i);
    // lane k = bytes [b, a, c, b] of the group (a, b, c) = in[3k..3k+2]
    const w = i8x16.swizzle(inp, i8x16(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10));
    // as u32: b | a << 8 | c << 16 | b << 24; the four 6-bit indices sit at bits 10, 4, 22, 16
    const i0 = v128.and(i32x4.shr_u(w, 10), i32x4.splat(0x0000003f));
    const i1 = v128.and(i32x4.shl(w, 4), i32x4.splat(0x00003f00));
    const i2 = v128.and(i32x4.shr_u(w, 6), i32x4.splat(0x003f0000));
    const i3 = v128.and(i32x4.shl(w, 8), i32x4.splat(0x3f000000));
    const idx = v128.or(v128.or(i0, i1), v128.or(i2, i3));
    // ASCII = index + offset; offset class: 0 for 26..51, 1..12 for 52..63, 13 for 0..25
    let cls = i8x16.sub_sat_u(idx, i8x16.splat(51));
    cls = v128.or(cls, v128.and(i8x16.lt_u(idx, i8x16.splat(26)), i8x16.splat(13)));
    const off = i8x16.swizzle(
      i8x16(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0),
      cls,
    );
    v128.store(o, i8x16.add(idx, off));
    o += 16;
  }
  for (; i + 3 <= n; i += 3) {
    const t = (<u32>load<u8>(src + <usize>i) << 16) |
      (<u32>load<u8>(src + <usize>i, 1) << 8) |
      <u32>load<u8>(src + <usize>i, 2);
    store<u8>(o, load<u8>(ALPHABET + <usize>(t >> 18)));
    store<u8>(o, load<u8>(ALPHABET + <usize>((t >> 12) & 63)), 1);
    store<u8>(o, load<u8>(ALPHABET + <usize>((t >> 6) & 63)), 2);
    store<u8>(o, load<u8>(ALPHABET + <usize>(t & 63)), 3);
    o += 4;
  }
  const rest = n - i;
  if (rest > 0) {
    let t = <u32>load<u8>(src + <usize>i) << 16;
    if (rest == 2) t |= <u32>load<u8>(src + <usize>i, 1) << 8;
    store<u8>(o, load<u8>(ALPHABET + <usize>(t >> 18)));
    store<u8>(o, load<u8>(ALPHABET + <usize>((t >> 12) & 63)), 1);
    store<u8>(o, rest == 2 ? load<u8>(ALPHABET + <usize>((t >> 6) & 63)) : PAD, 2);
    store<u8>(o, PAD, 3);
    o += 4;
  }
  return <i32>(o - dst);
}

// ---------------------------------------------------------------------------------------------
// Decode

/** Upper bound of decoded bytes for n characters: n / 4 * 3 (exact unless padded). */
export function b64_decoded_max(n: i32): i32 {
  return (n >> 2) * 3;
}

/**
 * Decodes n base64 characters at src into dst (room for b64_decoded_max(n) bytes). Returns the
 * number of bytes written, or -1 if the input is not strict, canonical, padded base64.
 */
export function b64_decode(src: usize, n: i32, dst: usize): i32 {
  if (n < 0 || (n & 3) != 0) return -1;
  if (n == 0) return 0;
  let i: i32 = 0;
  let o: usize = dst;
  // SIMD over full 16-character blocks, never touching the last quartet (it may be padded).
  // Errors accumulate and are checked once: invalid input only costs the wasted work.
  let bad = i8x16.splat(0);
  for (; i + 16 < n; i += 16) {
    const c = v128.load(src + <usize>i);
    const hi = i8x16.shr_u(c, 4);
    const lo = v128.and(c, i8x16.splat(15));
    // Invalid iff the class bit of the high nibble is among the classes the low nibble
    // excludes. Class bits: 1 = 0x2_, 2 = 0x3_, 4 = 0x4_/0x6_, 8 = 0x5_/0x7_, 16 = anything else.
    const hiClass = i8x16.swizzle(
      i8x16(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10),
      hi,
    );
    const loBad = i8x16.swizzle(
      i8x16(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a),
      lo,
    );
    bad = v128.or(bad, v128.and(hiClass, loBad));
    // value = c + roll[hi - (c == '/')]: '/' 16, '+' 19, digits 4, upper -65, lower -71
    const rollIdx = i8x16.add(hi, i8x16.eq(c, i8x16.splat(0x2f)));
    const roll = i8x16.swizzle(i8x16(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0), rollIdx);
    const v = i8x16.add(c, roll);
    // per 16 bits: v0 << 6 | v1; per 32 bits: t0 << 12 | t1 = 24 bits, big-endian order
    const t = v128.or(i16x8.shl(v128.and(v, i16x8.splat(0xff)), 6), i16x8.shr_u(v, 8));
    const u = i32x4.dot_i16x8_s(t, i32x4.splat(0x00011000));
    const out = i8x16.swizzle(u, i8x16(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
    v128.store64_lane(o, out, 0);
    v128.store32_lane(o, out, 2, 8);
    o += 12;
  }
  if (v128.any_true(bad)) return -1;
  // Full quartets before the last one.
  for (; i + 4 < n; i += 4) {
    const a = <u32>load<u8>(DECODE + <usize>load<u8>(src + <usize>i));
    const b = <u32>load<u8>(DECODE + <usize>load<u8>(src + <usize>i, 1));
    const c = <u32>load<u8>(DECODE + <usize>load<u8>(src + <usize>i, 2));
    const d = <u32>load<u8>(DECODE + <usize>load<u8>(src + <usize>i, 3));
    if ((a | b | c | d) > 63) return -1;
    const t = (a << 18) | (b << 12) | (c << 6) | d;
    store<u8>(o, <u8>(t >> 16));
    store<u8>(o, <u8>(t >> 8), 1);
    store<u8>(o, <u8>t, 2);
    o += 3;
  }
  // The last quartet: "xxxx", "xxx=" or "xx==".
  const p = src + <usize>i;
  const a = <u32>load<u8>(DECODE + <usize>load<u8>(p));
  const b = <u32>load<u8>(DECODE + <usize>load<u8>(p, 1));
  const c2 = load<u8>(p, 2);
  const d2 = load<u8>(p, 3);
  if ((a | b) > 63) return -1;
  if (d2 != PAD) {
    const c = <u32>load<u8>(DECODE + <usize>c2);
    const d = <u32>load<u8>(DECODE + <usize>d2);
    if ((c | d) > 63) return -1;
    const t = (a << 18) | (b << 12) | (c << 6) | d;
    store<u8>(o, <u8>(t >> 16));
    store<u8>(o, <u8>(t >> 8), 1);
    store<u8>(o, <u8>t, 2);
    o += 3;
  } else if (c2 != PAD) {
    const c = <u32>load<u8>(DECODE + <usize>c2);
    if (c > 63 || (c & 3) != 0) return -1;
    const t = (a << 18) | (b << 12) | (c << 6);
    store<u8>(o, <u8>(t >> 16));
    store<u8>(o, <u8>(t >> 8), 1);
    o += 2;
  } else {
    if ((b & 15) != 0) return -1;
    store<u8>(o, <u8>((a << 2) | (b >> 4)));
    o += 1;
  }
  return <i32>(o - dst);
}
