// Typed access to the G.711 kernels of the DSP core (assembly/g711.ts), bit-exact with the
// ITU-T G.191 STL. Block functions take pointers into WASM memory and are what hot paths use;
// encodeMulaw/decodeMulaw & co. copy through a reused scratch area and allocate their result,
// for tools and tests (simulator, converter), not for per-frame work.
import { bytesAt, loadDsp, samplesAt, type DspExports } from './wasm.js';

interface G711Exports extends DspExports {
  ulaw_compress(x: number): number;
  ulaw_expand(code: number): number;
  alaw_compress(x: number): number;
  alaw_expand(code: number): number;
  ulaw_encode_block(src: number, dst: number, n: number): void;
  ulaw_decode_block(src: number, dst: number, n: number): void;
  alaw_encode_block(src: number, dst: number, n: number): void;
  alaw_decode_block(src: number, dst: number, n: number): void;
}

let dsp: G711Exports | undefined;
function g711(): G711Exports {
  return (dsp ??= loadDsp() as G711Exports);
}

/** mu-law code (0..255) of a 16-bit sample (G.191 ulaw_compress; uses the 14 high bits). */
export function ulawCompress(x: number): number {
  return g711().ulaw_compress(x);
}
/** 16-bit sample of a mu-law code (G.191 ulaw_expand). */
export function ulawExpand(code: number): number {
  return g711().ulaw_expand(code);
}
/** A-law code (0..255) of a 16-bit sample (G.191 alaw_compress; uses the 12 high bits). */
export function alawCompress(x: number): number {
  return g711().alaw_compress(x);
}
/** 16-bit sample of an A-law code (G.191 alaw_expand). */
export function alawExpand(code: number): number {
  return g711().alaw_expand(code);
}

/** n int16 samples at `src` -> n mu-law bytes at `dst` (WASM pointers; no alignment needed). */
export function ulawEncodeBlock(src: number, dst: number, n: number): void {
  g711().ulaw_encode_block(src, dst, n);
}
/** n mu-law bytes at `src` -> n int16 samples at `dst` (WASM pointers). */
export function ulawDecodeBlock(src: number, dst: number, n: number): void {
  g711().ulaw_decode_block(src, dst, n);
}
/** n int16 samples at `src` -> n A-law bytes at `dst` (WASM pointers). */
export function alawEncodeBlock(src: number, dst: number, n: number): void {
  g711().alaw_encode_block(src, dst, n);
}
/** n A-law bytes at `src` -> n int16 samples at `dst` (WASM pointers). */
export function alawDecodeBlock(src: number, dst: number, n: number): void {
  g711().alaw_decode_block(src, dst, n);
}

// Scratch for the allocating helpers: CHUNK samples of int16 followed by CHUNK code bytes,
// allocated on first use and reused, so long inputs never grow WASM memory beyond it.
const CHUNK = 8192;
let scratch = 0;
function scratchPtr(): number {
  if (scratch === 0) scratch = g711().dsp_alloc(CHUNK * 3);
  return scratch;
}

function encodeWith(pcm: Int16Array, kernel: 'ulaw_encode_block' | 'alaw_encode_block'): Uint8Array {
  const d = g711();
  const pcmPtr = scratchPtr();
  const codePtr = pcmPtr + CHUNK * 2;
  const out = new Uint8Array(pcm.length);
  for (let off = 0; off < pcm.length; off += CHUNK) {
    const n = Math.min(CHUNK, pcm.length - off);
    samplesAt(pcmPtr, n).set(pcm.subarray(off, off + n));
    d[kernel](pcmPtr, codePtr, n);
    out.set(bytesAt(codePtr, n), off);
  }
  return out;
}

function decodeWith(codes: Uint8Array, kernel: 'ulaw_decode_block' | 'alaw_decode_block'): Int16Array {
  const d = g711();
  const pcmPtr = scratchPtr();
  const codePtr = pcmPtr + CHUNK * 2;
  const out = new Int16Array(codes.length);
  for (let off = 0; off < codes.length; off += CHUNK) {
    const n = Math.min(CHUNK, codes.length - off);
    bytesAt(codePtr, n).set(codes.subarray(off, off + n));
    d[kernel](codePtr, pcmPtr, n);
    out.set(samplesAt(pcmPtr, n), off);
  }
  return out;
}

/** Allocating mu-law encode (tools/tests; hot paths use ulawEncodeBlock on WASM memory). */
export function encodeMulaw(pcm: Int16Array): Uint8Array {
  return encodeWith(pcm, 'ulaw_encode_block');
}
/** Allocating mu-law decode (tools/tests; hot paths use ulawDecodeBlock on WASM memory). */
export function decodeMulaw(codes: Uint8Array): Int16Array {
  return decodeWith(codes, 'ulaw_decode_block');
}
/** Allocating A-law encode (tools/tests). */
export function encodeAlaw(pcm: Int16Array): Uint8Array {
  return encodeWith(pcm, 'alaw_encode_block');
}
/** Allocating A-law decode (tools/tests). */
export function decodeAlaw(codes: Uint8Array): Int16Array {
  return decodeWith(codes, 'alaw_decode_block');
}
