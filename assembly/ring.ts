// Byte ring buffers in linear memory: audio queues between the socket side and the kernels, and
// the pre-roll of recent caller audio (ring_write_overwrite keeps only the newest bytes).
// One allocation per ring, made at call start: header followed by the storage. Copies are at
// most two memory.copy calls (before and after the wrap point), never per-byte loops.
// Byte counts are bytes: a ring of int16 samples stays sample-aligned as long as callers move
// even counts.

const CAP: usize = 0; // i32 capacity
const HEAD: usize = 4; // i32 index of the oldest unread byte
const COUNT: usize = 8; // i32 unread bytes
const DATA: usize = 16; // storage; 16 keeps it as aligned as the allocation

// @ts-ignore: decorator
@inline
function cap(p: usize): i32 {
  return load<i32>(p, CAP);
}
// @ts-ignore: decorator
@inline
function head(p: usize): i32 {
  return load<i32>(p, HEAD);
}
// @ts-ignore: decorator
@inline
function count(p: usize): i32 {
  return load<i32>(p, COUNT);
}

/** A ring of `capacity` bytes (>= 1), empty; 0 if capacity < 1. Free with ring_free. */
export function ring_new(capacity: i32): usize {
  if (capacity < 1) return 0;
  const p = heap.alloc(DATA + <usize>capacity);
  store<i32>(p, capacity, CAP);
  store<i32>(p, 0, HEAD);
  store<i32>(p, 0, COUNT);
  store<i32>(p, 0, 12);
  return p;
}

export function ring_free(p: usize): void {
  if (p != 0) heap.free(p);
}

export function ring_capacity(p: usize): i32 {
  return cap(p);
}

/** Unread bytes. */
export function ring_available(p: usize): i32 {
  return count(p);
}

/** Bytes that ring_write can accept now. */
export function ring_space(p: usize): i32 {
  return cap(p) - count(p);
}

export function ring_clear(p: usize): void {
  store<i32>(p, 0, HEAD);
  store<i32>(p, 0, COUNT);
}

/** Address of the oldest unread byte (valid until the next write/read/skip/clear). */
export function ring_data_ptr(p: usize): usize {
  return p + DATA + <usize>head(p);
}

/** Unread bytes stored contiguously from ring_data_ptr (the rest wraps to the start). */
export function ring_contiguous(p: usize): i32 {
  const c = count(p);
  const toEnd = cap(p) - head(p);
  return c < toEnd ? c : toEnd;
}

/** Copies n bytes from src to the write position, which must have room (n <= space). */
function put(p: usize, src: usize, n: i32): void {
  const c = cap(p);
  let tail = head(p) + count(p);
  if (tail >= c) tail -= c;
  const first = n < c - tail ? n : c - tail;
  const data = p + DATA;
  memory.copy(data + <usize>tail, src, <usize>first);
  if (n > first) memory.copy(data, src + <usize>first, <usize>(n - first));
  store<i32>(p, count(p) + n, COUNT);
}

/** Appends up to n bytes from src without touching unread data; returns the bytes written. */
export function ring_write(p: usize, src: usize, n: i32): i32 {
  const space = cap(p) - count(p);
  const w = n < space ? n : space;
  if (w <= 0) return 0;
  put(p, src, w);
  return w;
}

/**
 * Appends all n bytes from src, dropping the oldest unread bytes to make room; when n exceeds
 * the capacity only the newest `capacity` bytes of src are kept. Returns the number of bytes
 * lost (old unread bytes dropped plus source bytes not stored).
 */
export function ring_write_overwrite(p: usize, src: usize, n: i32): i32 {
  if (n <= 0) return 0;
  const c = cap(p);
  if (n >= c) {
    const lost = count(p) + (n - c);
    memory.copy(p + DATA, src + <usize>(n - c), <usize>c);
    store<i32>(p, 0, HEAD);
    store<i32>(p, c, COUNT);
    return lost;
  }
  const drop = n - (c - count(p));
  if (drop > 0) ring_skip(p, drop);
  put(p, src, n);
  return drop > 0 ? drop : 0;
}

/** Copies up to n of the oldest unread bytes to dst without consuming them; returns the count. */
export function ring_peek(p: usize, dst: usize, n: i32): i32 {
  const c = count(p);
  const r = n < c ? n : c;
  if (r <= 0) return 0;
  const h = head(p);
  const toEnd = cap(p) - h;
  const first = r < toEnd ? r : toEnd;
  const data = p + DATA;
  memory.copy(dst, data + <usize>h, <usize>first);
  if (r > first) memory.copy(dst + <usize>first, data, <usize>(r - first));
  return r;
}

/** Consumes up to n unread bytes without copying; returns the count. */
export function ring_skip(p: usize, n: i32): i32 {
  const c = count(p);
  const s = n < c ? n : c;
  if (s <= 0) return 0;
  if (s == c) {
    // empty: restart at 0 so the next data is contiguous for as long as possible
    store<i32>(p, 0, HEAD);
    store<i32>(p, 0, COUNT);
    return s;
  }
  let h = head(p) + s;
  const k = cap(p);
  if (h >= k) h -= k;
  store<i32>(p, h, HEAD);
  store<i32>(p, c - s, COUNT);
  return s;
}

/** Moves up to n of the oldest unread bytes to dst; returns the count. */
export function ring_read(p: usize, dst: usize, n: i32): i32 {
  const r = ring_peek(p, dst, n);
  ring_skip(p, r);
  return r;
}
