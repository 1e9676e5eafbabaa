// Raw allocation for per-call state. heap.alloc/heap.free (TLSF, minimal runtime) manage
// unmanaged memory the GC never touches; memory may only grow inside these calls, which the
// bridge makes at call start and end, never per frame.
export function dsp_alloc(size: i32): usize {
  const p = heap.alloc(<usize>size);
  memory.fill(p, 0, <usize>size);
  return p;
}

export function dsp_free(ptr: usize): void {
  if (ptr != 0) heap.free(ptr);
}

export function memory_pages(): i32 {
  return memory.size();
}
