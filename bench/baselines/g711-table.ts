// The plain-JS peer for the G.711 kernels: 256-entry decode tables and shifted-index encode
// tables, one table load per sample. This is the fastest shape of G.711 in plain JS (no branches,
// no Math calls), so it is the bar the WASM block kernels have to clear.
//
// The tables are filled from the project's port of the ITU-T G.191 STL arithmetic
// (scripts/gen-g711-vectors.mjs, the oracle of test/dsp/g711.test.ts), which the bench also uses
// to check every implementation. The STL encoders only look at x >> 2 (mu-law) and x >> 4 (A-law),
// and ~(x >> k) == (~x) >> k, so indexing a table by the shifted sample is exact.
import { alawCompress, alawExpand, ulawCompress, ulawExpand } from '../../scripts/gen-g711-vectors.mjs';

const one = (f: (v: ArrayLike<number>) => Int16Array) => (x: number): number => f([x])[0];
export const stlUlawCompress = one(ulawCompress);
export const stlUlawExpand = one(ulawExpand);
export const stlAlawCompress = one(alawCompress);
export const stlAlawExpand = one(alawExpand);

const ULAW_ENC = new Uint8Array(1 << 14); // index: (x >> 2) & 0x3fff
const ALAW_ENC = new Uint8Array(1 << 12); // index: (x >> 4) & 0xfff
const ULAW_DEC = new Int16Array(256);
const ALAW_DEC = new Int16Array(256);
ULAW_ENC.set(ulawCompress(Int16Array.from({ length: 1 << 14 }, (_, i) => ((i << 18) >> 18) << 2)));
ALAW_ENC.set(alawCompress(Int16Array.from({ length: 1 << 12 }, (_, i) => ((i << 20) >> 20) << 4)));
const CODES = Int16Array.from({ length: 256 }, (_, c) => c);
ULAW_DEC.set(ulawExpand(CODES));
ALAW_DEC.set(alawExpand(CODES));

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
