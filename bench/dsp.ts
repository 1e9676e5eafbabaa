// Raw access to the DSP core for the bench: the exports by name, and a Buffer over its memory.
import { loadDsp, type DspExports } from '../src/dsp/wasm.js';

export interface BenchExports extends DspExports {
  ulaw_encode_block(src: number, dst: number, n: number): void;
  ulaw_decode_block(src: number, dst: number, n: number): void;
  alaw_encode_block(src: number, dst: number, n: number): void;
  alaw_decode_block(src: number, dst: number, n: number): void;
  b64_encode(src: number, n: number, dst: number): number;
  b64_decode(src: number, n: number, dst: number): number;
  json_find_string(msg: number, len: number, key: number, keyLen: number): number;
  json_find_strings(msg: number, len: number, keys: number, count: number): number;
  json_last_len(): number;
  resampler_new(inRate: number, outRate: number): number;
  resampler_free(p: number): void;
  resampler_process(p: number, src: number, n: number, dst: number): number;
  resampler_max_out(p: number, n: number): number;
  resampler_delay_ms(p: number): number;
  vad_new(): number;
  vad_free(p: number): void;
  vad_process(p: number, pcm: number, n: number, botPlaying: number): number;
}

export const dsp = loadDsp() as BenchExports;

/**
 * Grows WASM memory once, up front: TLSF keeps the freed block, so the bench's later allocations
 * reuse it and views made over memory.buffer stay attached for the whole run (checked by
 * assertNotGrown).
 */
const PREGROW_BYTES = 24 << 20;
dsp.dsp_free(dsp.dsp_alloc(PREGROW_BYTES));
const buffer0 = dsp.memory.buffer;

export function assertNotGrown(): void {
  if (dsp.memory.buffer !== buffer0) throw new Error('WASM memory grew during the bench: views are stale');
}

/** A Node Buffer over all of WASM memory (for Buffer base64 straight in and out of it). */
export const mem = Buffer.from(buffer0);

/** Allocates `bytes` (16-byte aligned in practice) and returns its pointer. */
export function alloc(bytes: number): number {
  const p = dsp.dsp_alloc(bytes);
  assertNotGrown();
  return p;
}

export function i16At(ptr: number, n: number): Int16Array {
  return new Int16Array(buffer0, ptr, n);
}
export function u8At(ptr: number, n: number): Uint8Array {
  return new Uint8Array(buffer0, ptr, n);
}
