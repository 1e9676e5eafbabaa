// Byte rings against a plain JS model, with wraparound, overwrite (pre-roll) and bounds.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ringAvailable,
  ringCapacity,
  ringClear,
  ringContiguous,
  ringDataPtr,
  ringFree,
  ringNew,
  ringPeek,
  ringRead,
  ringSkip,
  ringSpace,
  ringWrite,
  ringWriteOverwrite,
} from '../../src/dsp/ring.js';
import { loadDsp } from '../../src/dsp/wasm.js';

const dsp = loadDsp();
const IO = 4096;
const SRC = dsp.dsp_alloc(IO);
const DST = dsp.dsp_alloc(IO + 64);
const mem = () => new Uint8Array(dsp.memory.buffer);
const rings: number[] = [];
afterAll(() => rings.forEach(ringFree));

function newRing(capacity: number): number {
  const p = ringNew(capacity);
  expect(p).not.toBe(0);
  rings.push(p);
  return p;
}

function write(p: number, bytes: number[], overwrite = false): number {
  mem().set(bytes, SRC);
  return overwrite ? ringWriteOverwrite(p, SRC, bytes.length) : ringWrite(p, SRC, bytes.length);
}

/** Reads/peeks n bytes; also checks nothing past the returned count was written to dst. */
function take(p: number, n: number, peek = false): number[] {
  mem().fill(0xa5, DST, DST + n + 64);
  const r = peek ? ringPeek(p, DST, n) : ringRead(p, DST, n);
  const m = mem();
  for (let i = Math.max(r, 0); i < n + 64; i++) expect(m[DST + i]).toBe(0xa5);
  return Array.from(m.subarray(DST, DST + r));
}

const seq = (n: number, start = 0) => Array.from({ length: n }, (_, i) => (start + i) & 0xff);

describe('ring buffer', () => {
  it('starts empty with the requested capacity; rejects capacity < 1', () => {
    const p = newRing(10);
    expect(ringCapacity(p)).toBe(10);
    expect(ringAvailable(p)).toBe(0);
    expect(ringSpace(p)).toBe(10);
    expect(take(p, 5)).toEqual([]);
    expect(ringNew(0)).toBe(0);
    expect(ringNew(-5)).toBe(0);
  });

  it('write never overwrites unread data', () => {
    const p = newRing(8);
    expect(write(p, seq(5))).toBe(5);
    expect(write(p, seq(5, 100))).toBe(3);
    expect(ringSpace(p)).toBe(0);
    expect(write(p, [1])).toBe(0);
    expect(take(p, 100)).toEqual([...seq(5), 100, 101, 102]);
  });

  it('wraps around: data written across the end reads back in order', () => {
    const p = newRing(8);
    write(p, seq(6));
    expect(take(p, 5)).toEqual(seq(5)); // head at 5, one byte left
    expect(write(p, seq(7, 50))).toBe(7); // tail wraps
    expect(ringAvailable(p)).toBe(8);
    expect(ringContiguous(p)).toBe(3); // bytes 5..7 before the wrap
    expect(mem()[ringDataPtr(p)]).toBe(5);
    expect(take(p, 3, true)).toEqual([5, 50, 51]);
    expect(take(p, 8)).toEqual([5, ...seq(7, 50)]);
    expect(ringAvailable(p)).toBe(0);
  });

  it('write_overwrite keeps the newest bytes (pre-roll) and reports what was lost', () => {
    const p = newRing(8);
    expect(write(p, seq(6), true)).toBe(0);
    expect(write(p, seq(4, 10), true)).toBe(2); // drops 0, 1
    expect(take(p, 8, true)).toEqual([2, 3, 4, 5, 10, 11, 12, 13]);
    expect(write(p, seq(20, 100), true)).toBe(8 + 12); // all old + 12 source bytes
    expect(take(p, 8, true)).toEqual(seq(8, 112));
    expect(write(p, seq(8, 200), true)).toBe(8); // exactly capacity
    expect(take(p, 100)).toEqual(seq(8, 200));
    expect(write(p, [], true)).toBe(0);
  });

  it('peek does not consume; skip does; clear empties', () => {
    const p = newRing(16);
    write(p, seq(10));
    expect(take(p, 4, true)).toEqual(seq(4));
    expect(ringAvailable(p)).toBe(10);
    expect(ringSkip(p, 3)).toBe(3);
    expect(take(p, 2)).toEqual([3, 4]);
    expect(ringSkip(p, 100)).toBe(5);
    expect(ringAvailable(p)).toBe(0);
    write(p, seq(4));
    ringClear(p);
    expect(ringAvailable(p)).toBe(0);
    expect(ringSpace(p)).toBe(16);
    expect(take(p, 4)).toEqual([]);
  });

  it('negative counts are no-ops', () => {
    const p = newRing(4);
    write(p, [1, 2]);
    expect(ringWrite(p, SRC, -1)).toBe(0);
    expect(ringWriteOverwrite(p, SRC, -1)).toBe(0);
    expect(ringRead(p, DST, -1)).toBe(0);
    expect(ringPeek(p, DST, -1)).toBe(0);
    expect(ringSkip(p, -1)).toBe(0);
    expect(take(p, 4)).toEqual([1, 2]);
  });

  it('large rings move big blocks across the wrap (one second of 24 kHz PCM16)', () => {
    const cap = 48000;
    const p = newRing(cap);
    const big = dsp.dsp_alloc(cap);
    const out = dsp.dsp_alloc(cap);
    const pattern = Uint8Array.from({ length: cap }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
    mem().set(pattern, big);
    expect(ringWrite(p, big, 30000)).toBe(30000);
    expect(ringSkip(p, 29000)).toBe(29000);
    expect(ringWrite(p, big, cap)).toBe(cap - 1000);
    expect(ringRead(p, out, cap)).toBe(cap);
    const got = mem().slice(out, out + cap);
    expect(Buffer.from(got.subarray(0, 1000)).equals(Buffer.from(pattern.subarray(29000, 30000)))).toBe(true);
    expect(Buffer.from(got.subarray(1000)).equals(Buffer.from(pattern.subarray(0, cap - 1000)))).toBe(true);
    dsp.dsp_free(big);
    dsp.dsp_free(out);
  });
});

describe('ring buffer against a JS model (property)', () => {
  type Op =
    | { kind: 'write' | 'overwrite'; n: number }
    | { kind: 'read' | 'peek' | 'skip'; n: number }
    | { kind: 'clear' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constantFrom('write' as const, 'overwrite' as const), n: fc.integer({ min: -2, max: 80 }) }),
    fc.record({ kind: fc.constantFrom('read' as const, 'peek' as const, 'skip' as const), n: fc.integer({ min: -2, max: 80 }) }),
    fc.constant({ kind: 'clear' as const }),
  );

  it('every operation returns and yields what the model does', () => {
    let stamp = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
        const p = ringNew(capacity);
        try {
          let model: number[] = [];
          for (const o of ops) {
            if (o.kind === 'write' || o.kind === 'overwrite') {
              const bytes = seq(Math.max(o.n, 0), stamp);
              stamp += 7;
              const got = write(p, bytes, o.kind === 'overwrite');
              if (o.kind === 'write') {
                const w = Math.min(bytes.length, capacity - model.length);
                expect(got).toBe(w);
                model.push(...bytes.slice(0, w));
              } else {
                const all = [...model, ...bytes];
                const kept = all.slice(Math.max(0, all.length - capacity));
                expect(got).toBe(all.length - kept.length);
                model = kept;
              }
            } else if (o.kind === 'read' || o.kind === 'peek') {
              const want = model.slice(0, Math.max(o.n, 0));
              expect(take(p, Math.max(o.n, 0), o.kind === 'peek')).toEqual(want);
              if (o.kind === 'read') model = model.slice(want.length);
            } else if (o.kind === 'skip') {
              const s = Math.min(Math.max(o.n, 0), model.length);
              expect(ringSkip(p, o.n)).toBe(s);
              model = model.slice(s);
            } else {
              ringClear(p);
              model = [];
            }
            expect(ringAvailable(p)).toBe(model.length);
            expect(ringSpace(p)).toBe(capacity - model.length);
            // the contiguous run at ring_data_ptr is the start of the unread data
            const run = ringContiguous(p);
            expect(run).toBeLessThanOrEqual(model.length);
            if (model.length > 0) expect(run).toBeGreaterThan(0);
            const ptr = ringDataPtr(p);
            expect(Array.from(mem().subarray(ptr, ptr + run))).toEqual(model.slice(0, run));
          }
        } finally {
          ringFree(p);
        }
      }),
      { numRuns: 400, seed: 1717 },
    );
  });
});
