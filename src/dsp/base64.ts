// Typed access to the base64 kernels of the DSP core (assembly/base64.ts): standard alphabet,
// padded, strict decoding (RFC 4648). Pointer functions are for hot paths; encodeBase64 /
// decodeBase64 copy through a reused scratch area and allocate, for tools and tests.
import { bytesAt, loadDsp, type DspExports } from './wasm.js';

interface Base64Exports extends DspExports {
  b64_encode(src: number, n: number, dst: number): number;
  b64_decode(src: number, n: number, dst: number): number;
}

let dsp: Base64Exports | undefined;
function b64(): Base64Exports {
  return (dsp ??= loadDsp() as Base64Exports);
}

/** Characters that `n` bytes encode to: 4 * ceil(n / 3). */
export function b64EncodedLen(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/** Room the decoder needs for `n` characters: n / 4 * 3 (the exact size unless padded). */
export function b64DecodedMax(n: number): number {
  return (n >> 2) * 3;
}

/** Encodes n bytes at `src` into `dst` (room for b64EncodedLen(n)); returns characters written. */
export function b64Encode(src: number, n: number, dst: number): number {
  return b64().b64_encode(src, n, dst);
}

/**
 * Decodes n characters at `src` into `dst` (room for b64DecodedMax(n)); returns bytes written,
 * or -1 for input that is not strict, canonical, padded base64 (dst may hold partial output).
 */
export function b64Decode(src: number, n: number, dst: number): number {
  return b64().b64_decode(src, n, dst);
}

// Scratch: CHUNK_BYTES raw bytes + CHUNK_CHARS characters, allocated once on first use.
const CHUNK_BYTES = 12288; // multiple of 3: chunks encode without inner padding
const CHUNK_CHARS = (CHUNK_BYTES / 3) * 4;
let scratch = 0;
function scratchPtr(): number {
  if (scratch === 0) scratch = b64().dsp_alloc(CHUNK_BYTES + CHUNK_CHARS);
  return scratch;
}
const latin1 = new TextDecoder('latin1');
const utf8 = new TextEncoder();

/** Allocating encode to a string (tools/tests). */
export function encodeBase64(bytes: Uint8Array): string {
  const d = b64();
  const raw = scratchPtr();
  const chars = raw + CHUNK_BYTES;
  let out = '';
  for (let off = 0; off < bytes.length; off += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, bytes.length - off);
    bytesAt(raw, n).set(bytes.subarray(off, off + n));
    const w = d.b64_encode(raw, n, chars);
    out += latin1.decode(bytesAt(chars, w));
  }
  return out;
}

/** Allocating strict decode of a string (tools/tests); null if it is not valid base64. */
export function decodeBase64(text: string): Uint8Array | null {
  const d = b64();
  const raw = scratchPtr();
  const chars = raw + CHUNK_BYTES;
  // Anything outside ASCII is invalid anyway; UTF-8 keeps it invalid (bytes >= 0x80), where a
  // latin1 conversion could fold e.g. U+0141 into 'A'.
  const bytes = utf8.encode(text);
  if (bytes.length % 4 !== 0) return null;
  const out = new Uint8Array(b64DecodedMax(bytes.length));
  let o = 0;
  for (let off = 0; off < bytes.length; off += CHUNK_CHARS) {
    const n = Math.min(CHUNK_CHARS, bytes.length - off);
    bytesAt(chars, n).set(bytes.subarray(off, off + n));
    const w = d.b64_decode(chars, n, raw);
    if (w < 0) return null;
    // a chunk that is not the last must not end in padding
    if (off + n < bytes.length && w !== b64DecodedMax(n)) return null;
    out.set(bytesAt(raw, w), o);
    o += w;
  }
  return out.subarray(0, o);
}
