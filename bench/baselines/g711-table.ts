// The plain-JS peer for the G.711 kernels: 256-entry decode tables and shifted-index encode
// tables, one table load per sample. This is the fastest shape of G.711 in plain JS (no branches,
// no Math calls), so it is the bar the WASM block kernels have to clear.
//
// The tables are filled from a JS transcription of the ITU-T G.191 STL arithmetic (g711.c
// ulaw_compress/ulaw_expand/alaw_compress/alaw_expand), written here independently of
// assembly/g711.ts so the bench can also check the WASM kernels against it. The STL encoders only
// look at x >> 2 (mu-law) and x >> 4 (A-law), and ~(x >> k) == (~x) >> k, so indexing a table by
// the shifted sample is exact.

export function stlUlawCompress(x: number): number {
  x = (x << 16) >> 16;
  let absno = (x < 0 ? ~x >> 2 : x >> 2) + 33;
  if (absno > 0x1fff) absno = 0x1fff;
  let i = absno >> 6;
  let segno = 1;
  while (i !== 0) {
    segno++;
    i >>= 1;
  }
  const high = 8 - segno;
  const low = 15 - ((absno >> segno) & 15);
  let code = (high << 4) | low;
  if (x >= 0) code |= 0x80;
  return code;
}

export function stlUlawExpand(code: number): number {
  code &= 0xff;
  const sign = code < 0x80 ? -1 : 1;
  const m = ~code;
  const exponent = (m >> 4) & 7;
  const mantissa = m & 15;
  const step = 4 << (exponent + 1);
  return sign * ((0x80 << exponent) + step * mantissa + (step >> 1) - 4 * 33);
}

export function stlAlawCompress(x: number): number {
  x = (x << 16) >> 16;
  let ix = x < 0 ? ~x >> 4 : x >> 4;
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

export function stlAlawExpand(code: number): number {
  let ix = (code & 0xff) ^ 0x55;
  ix &= 0x7f;
  let iexp = ix >> 4;
  let mant = ix & 0x0f;
  if (iexp > 0) mant = mant + 16;
  mant = (mant << 4) + 0x0008;
  if (iexp > 1) mant = mant << (iexp - 1);
  return (code & 0xff) > 127 ? mant : -mant;
}

const ULAW_ENC = new Uint8Array(1 << 14); // index: (x >> 2) & 0x3fff
const ALAW_ENC = new Uint8Array(1 << 12); // index: (x >> 4) & 0xfff
const ULAW_DEC = new Int16Array(256);
const ALAW_DEC = new Int16Array(256);
for (let i = 0; i < 1 << 14; i++) ULAW_ENC[i] = stlUlawCompress(((i << 18) >> 18) << 2);
for (let i = 0; i < 1 << 12; i++) ALAW_ENC[i] = stlAlawCompress(((i << 20) >> 20) << 4);
for (let c = 0; c < 256; c++) {
  ULAW_DEC[c] = stlUlawExpand(c);
  ALAW_DEC[c] = stlAlawExpand(c);
}

export function ulawEncodeTable(src: Int16Array, dst: Uint8Array, n: number): void {
  for (let i = 0; i < n; i++) dst[i] = ULAW_ENC[(src[i] >> 2) & 0x3fff];
}
export function ulawDecodeTable(src: Uint8Array, dst: Int16Array, n: number): void {
  for (let i = 0; i < n; i++) dst[i] = ULAW_DEC[src[i]];
}
export function alawEncodeTable(src: Int16Array, dst: Uint8Array, n: number): void {
  for (let i = 0; i < n; i++) dst[i] = ALAW_ENC[(src[i] >> 4) & 0xfff];
}
export function alawDecodeTable(src: Uint8Array, dst: Int16Array, n: number): void {
  for (let i = 0; i < n; i++) dst[i] = ALAW_DEC[src[i]];
}
