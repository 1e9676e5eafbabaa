// Timing and reporting: every group's implementations run in the same process, one after the
// other, through tinybench; each task call processes a batch of frames (so timer overhead and
// resolution do not matter) and the median call time is divided by the batch size.
import { Bench } from 'tinybench';

export type Role = 'ours' | 'peer' | 'ref';

export interface Entry {
  name: string;
  role: Role;
  /** Runs `frames` frames of work (one batch). */
  fn: () => void;
  /** Frames per fn() call. */
  frames: number;
  /** Measured quality or a correctness note, computed once, not timed. */
  quality?: string;
}

export interface Group {
  title: string;
  entries: Entry[];
}

export interface Row {
  group: string;
  name: string;
  role: Role;
  /** Median ns per 20 ms frame. */
  ns: number;
  /** Relative margin of error of the mean, %. */
  rme: number;
  /** Best peer's ns / this ns (> 1: faster than the best peer); undefined without peers. */
  speedup?: number;
  quality?: string;
}

export interface RunOptions {
  /** Time budget per implementation, ms. */
  time: number;
  warmupTime: number;
}

export async function runGroup(g: Group, opts: RunOptions): Promise<Row[]> {
  const bench = new Bench({ time: opts.time, warmupTime: opts.warmupTime, iterations: 20, throws: true });
  for (const e of g.entries) bench.add(e.name, e.fn);
  await bench.run();
  const rows: Row[] = g.entries.map((e, i) => {
    const r = bench.tasks[i].result;
    if (r.state !== 'completed') throw new Error(`${g.title} / ${e.name}: ${r.state}`);
    return {
      group: g.title,
      name: e.name,
      role: e.role,
      ns: (r.latency.p50 * 1e6) / e.frames,
      rme: r.latency.rme,
      quality: e.quality,
    };
  });
  const peers = rows.filter((r) => r.role !== 'ours');
  if (peers.length > 0) {
    const best = Math.min(...peers.map((r) => r.ns));
    for (const r of rows) r.speedup = best / r.ns;
  }
  return rows;
}

function fmtNs(ns: number): string {
  if (ns >= 100_000) return `${(ns / 1000).toFixed(0)} µs`;
  if (ns >= 10_000) return `${(ns / 1000).toFixed(1)} µs`;
  return `${ns.toFixed(0)} ns`;
}

const ROLE_MARK: Record<Role, string> = { ours: '*', peer: ' ', ref: '=' };

/** One table: a heading per group, then its rows. */
export function formatTable(rows: Row[]): string {
  const head = ['', 'implementation', 'per frame', '±%', 'vs best peer', 'measured quality / notes'];
  const body: string[][] = [];
  let group = '';
  const groupLines = new Map<number, string>();
  for (const r of rows) {
    if (r.group !== group) {
      group = r.group;
      groupLines.set(body.length, r.group);
    }
    body.push([
      ROLE_MARK[r.role],
      r.name,
      fmtNs(r.ns),
      r.rme.toFixed(1),
      r.speedup === undefined ? '-' : `${r.speedup.toFixed(2)}x`,
      r.quality ?? '',
    ]);
  }
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const right = new Set([2, 3, 4]);
  const line = (cells: string[]): string =>
    cells.map((s, c) => (right.has(c) ? s.padStart(widths[c]) : s.padEnd(widths[c]))).join('  ').trimEnd();
  const total = widths.reduce((a, b) => a + b + 2, -2);
  const out = [line(head), '-'.repeat(total)];
  body.forEach((b, i) => {
    const g = groupLines.get(i);
    if (g !== undefined) out.push(`${i === 0 ? '' : '\n'}${g}`);
    out.push(line(b));
  });
  return out.join('\n');
}
