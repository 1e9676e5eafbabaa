// Typed access to the byte ring buffers of the DSP core (assembly/ring.ts). A ring is a pointer
// into WASM memory; ringNew allocates (may grow memory: call at call start), ringFree releases.
// All src/dst arguments are WASM pointers; counts are bytes.
import { loadDsp, type DspExports } from './wasm.js';

interface RingExports extends DspExports {
  ring_new(capacity: number): number;
  ring_free(p: number): void;
  ring_capacity(p: number): number;
  ring_available(p: number): number;
  ring_space(p: number): number;
  ring_clear(p: number): void;
  ring_data_ptr(p: number): number;
  ring_contiguous(p: number): number;
  ring_write(p: number, src: number, n: number): number;
  ring_write_overwrite(p: number, src: number, n: number): number;
  ring_peek(p: number, dst: number, n: number): number;
  ring_skip(p: number, n: number): number;
  ring_read(p: number, dst: number, n: number): number;
}

let dsp: RingExports | undefined;
function ring(): RingExports {
  return (dsp ??= loadDsp() as RingExports);
}

/** A new empty ring of `capacity` bytes (0 if capacity < 1). */
export function ringNew(capacity: number): number {
  return ring().ring_new(capacity);
}
export function ringFree(p: number): void {
  ring().ring_free(p);
}
export function ringCapacity(p: number): number {
  return ring().ring_capacity(p);
}
/** Unread bytes. */
export function ringAvailable(p: number): number {
  return ring().ring_available(p);
}
/** Bytes ringWrite can accept now. */
export function ringSpace(p: number): number {
  return ring().ring_space(p);
}
export function ringClear(p: number): void {
  ring().ring_clear(p);
}
/** Address of the oldest unread byte; ringContiguous(p) bytes follow it before the wrap. */
export function ringDataPtr(p: number): number {
  return ring().ring_data_ptr(p);
}
export function ringContiguous(p: number): number {
  return ring().ring_contiguous(p);
}
/** Appends up to n bytes, never overwriting unread data; returns bytes written. */
export function ringWrite(p: number, src: number, n: number): number {
  return ring().ring_write(p, src, n);
}
/** Appends all n bytes, dropping the oldest as needed; returns bytes lost. */
export function ringWriteOverwrite(p: number, src: number, n: number): number {
  return ring().ring_write_overwrite(p, src, n);
}
/** Copies up to n oldest unread bytes to dst without consuming; returns the count. */
export function ringPeek(p: number, dst: number, n: number): number {
  return ring().ring_peek(p, dst, n);
}
/** Consumes up to n unread bytes; returns the count. */
export function ringSkip(p: number, n: number): number {
  return ring().ring_skip(p, n);
}
/** Moves up to n oldest unread bytes to dst; returns the count. */
export function ringRead(p: number, dst: number, n: number): number {
  return ring().ring_read(p, dst, n);
}
