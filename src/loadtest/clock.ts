// One clock for every process of a load test. Node's performance.now() and process.hrtime() both
// read libuv's uv_hrtime (CLOCK_MONOTONIC on Linux), which is one system-wide clock, so
// `performance.now() + OFFSET` below is in the same time base in the generator, the model and the
// orchestrator: a frame sent at t in one process and received at t' in another took t' - t.
// (performance.timeOrigin is wall-clock and only ms-aligned between processes; this is not.)
import { performance } from 'node:perf_hooks';

const OFFSET = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** Milliseconds on the host's monotonic clock (comparable across processes on one machine). */
export function monoMs(): number {
  return performance.now() + OFFSET;
}
