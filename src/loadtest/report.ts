// Text output of a load test: the head-to-head table, per-bridge details, ramp and soak summaries
// and how the run compares to the targets (informational, not assertions).
import type { MachineInfo } from './proc.js';
import type { LoadMeasurement, RampResult, SoakResult } from './run.js';
import type { Summary } from './stats.js';

const MiB = 2 ** 20;

function f(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

function pair(s: Summary, digits = 1): string {
  return s.n ? `${f(s.p50, digits)} / ${f(s.p99, digits)}` : '-';
}

function ratio(base: number, ours: number): string {
  if (!Number.isFinite(base) || !Number.isFinite(ours) || ours <= 0) return '-';
  return `${(base / ours).toFixed(1)}x`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ');
  const sep = widths.map((w) => '-'.repeat(w)).join('-|-');
  return [line(rows[0]), sep, ...rows.slice(1).map(line)].join('\n');
}

export function formatMachine(m: MachineInfo): string {
  return `machine: ${m.cpuModel}, ${m.cores} cores, ${m.memGiB} GiB RAM, ${m.os}, node ${m.node}, load average ${m.loadAvg.join(' ')} at start`;
}

/**
 * JS heap + resident WASM memory added per call (after full GCs): the bridge's own per-call
 * state. RSS also moves with the native allocator's arenas (tens of MiB either way between two
 * identical runs), which says little about a call.
 */
export function managedPerCall(m: LoadMeasurement): number {
  const a = m.rss.idleMem;
  const b = m.rss.loadedMem;
  if (!b) return NaN;
  return (b.heapUsed + (b.wasmRss || 0) - a.heapUsed - (a.wasmRss || 0)) / m.concurrency;
}

export function cpuMsPerCallSecond(m: LoadMeasurement): number {
  return m.cpuPerCallSecond * 1000;
}

export function callsPerCore(m: LoadMeasurement): number {
  return m.cpuPerCallSecond > 0 ? 1 / m.cpuPerCallSecond : NaN;
}

/**
 * Columns: each measured bridge; after a baseline, its ratio against the voicebridge mode it is
 * paired with (vb24k with transcoding, vbpcmu with passthrough): baseline / voicebridge.
 */
export function formatHeadToHead(ms: LoadMeasurement[]): string {
  const byKey = new Map(ms.map((m) => [m.spec.key, m]));
  const cols: Array<{ title: string; m?: LoadMeasurement; vs?: [LoadMeasurement, LoadMeasurement] }> = [];
  for (const m of ms) {
    cols.push({ title: m.spec.label, m });
    const ours = m.spec.key === 'transcoding' ? byKey.get('vb24k') : m.spec.key === 'passthrough' ? byKey.get('vbpcmu') : undefined;
    if (ours) cols.push({ title: `${m.spec.key === 'transcoding' ? '(a)' : '(b)'} / vb`, vs: [m, ours] });
    // How far voicebridge pcmu is above the cost of just moving the messages.
    const vbu = byKey.get('vbpcmu');
    if (m.spec.key === 'floor' && vbu) cols.push({ title: 'vb pcmu / floor', vs: [vbu, m] });
  }
  const row = (name: string, val: (m: LoadMeasurement) => string, r?: (base: LoadMeasurement, ours: LoadMeasurement) => string) =>
    [name, ...cols.map((c) => (c.m ? val(c.m) : c.vs && r ? r(c.vs[0], c.vs[1]) : ''))];
  const rows: string[][] = [
    ['', ...cols.map((c) => c.title)],
    row('bridge CPU ms per call-second', (m) => f(cpuMsPerCallSecond(m), 3), (a, b) => ratio(a.cpuPerCallSecond, b.cpuPerCallSecond)),
    row('calls per core (CPU-bound est.)', (m) => f(callsPerCore(m), 0), (a, b) => ratio(callsPerCore(b), callsPerCore(a))),
    row('bridge CPU % of one core', (m) => f((m.cpu.bridgeS / m.cpu.wallS) * 100, 0)),
    row('  of which in the kernel, %', (m) => f((m.cpu.bridgeSysS / m.cpu.bridgeS) * 100, 0)),
    row('bridge waiting for a CPU, ms/s', (m) => f((m.cpu.bridgeWaitS / m.cpu.wallS) * 1000, 0)),
    row('machine busy (all processes), %', (m) => f(m.cpu.machineBusy * 100, 0)),
    row('RSS per call, KB (after full GC)', (m) => f(m.rss.perCall / 1024, 1), (a, b) => ratio(a.rss.perCall, b.rss.perCall)),
    row('  JS heap + WASM resident per call, KB', (m) => f(managedPerCall(m) / 1024, 1), (a, b) => ratio(managedPerCall(a), managedPerCall(b))),
    row('RSS idle -> loaded, MiB (GC)', (m) => `${f(m.rss.idle / MiB)} -> ${f(m.rss.loaded / MiB)}`),
    row('RSS loaded without forced GC, MiB', (m) => f(m.rss.loadedNoGc / MiB)),
    row('  JS heap idle -> loaded, MiB', (m) => `${f(m.rss.idleMem.heapUsed / MiB)} -> ${f((m.rss.loadedMem?.heapUsed ?? NaN) / MiB)}`),
    row('  WASM resident idle -> loaded, MiB', (m) => (m.rss.idleMem.wasmBytes ? `${f(m.rss.idleMem.wasmRss / MiB)} -> ${f((m.rss.loadedMem?.wasmRss ?? NaN) / MiB)}` : '-')),
    row('  WASM memory size loaded, MiB', (m) => (m.rss.idleMem.wasmBytes ? f((m.rss.loadedMem?.wasmBytes ?? NaN) / MiB) : '-')),
    row('inbound latency p50 / p99, ms', (m) => pair(m.latency.inbound, 2)),
    row('outbound latency p50 / p99, ms', (m) => pair(m.latency.outbound, 2)),
    row('outbound jitter p50 / p99, ms', (m) => pair(m.latency.jitter, 2)),
    row('  of which model send jitter', (m) => pair(m.latency.modelJitter, 2)),
    row('barge-in: onset -> clear p50 / p99, ms', (m) => pair(m.latency.barge, 1)),
    row('  clears / barge-ins', (m) => `${m.gen.barge.cleared} / ${m.gen.barge.attempted}`),
    row('  onset -> bot silent p50 / p99, ms', (m) => pair(m.latency.silenced, 1)),
    row('frames sent / appends matched', (m) => `${m.gen.framesSent} / ${m.latency.inbound.n}`),
    row('media frames received', (m) => String(m.gen.mediaIn)),
    row('calls completed / measured', (m) => `${m.gen.completed}/${m.calls} / ${m.latency.matchedCalls}`),
    row('errors', (m) => String(m.errors)),
    row('model error events (requests rejected)', (m) => String(m.modelErrors)),
  ];
  return table(rows);
}

export function formatDetails(m: LoadMeasurement): string {
  const pct = (s: number) => `${Math.round((s / m.cpu.wallS) * 100)}%`;
  const lines = [
    `${m.spec.label}: ${m.calls} calls x ${m.seconds} s (${m.concurrency} concurrent), ${f(m.gen.callSeconds, 0)} call-s in ${f(m.cpu.wallS)} s`,
    `  CPU over the run: bridge ${f(m.cpu.bridgeS, 2)} s (${pct(m.cpu.bridgeS)}), generator ${f(m.cpu.generatorS, 2)} s (${pct(m.cpu.generatorS)}), `
      + `model ${f(m.cpu.modelS, 2)} s (${pct(m.cpu.modelS)}); machine ${Math.round(m.cpu.machineBusy * 100)}% busy`,
    `  waiting for a CPU while runnable (main threads): bridge ${f(m.cpu.bridgeWaitS * 1000, 0)} ms, `
      + `generator ${f(m.cpu.generatorWaitS * 1000, 0)} ms, model ${f(m.cpu.modelWaitS * 1000, 0)} ms`,
    `  generator send lag p50/p99/max ${f(m.gen.sendLag.p50, 2)}/${f(m.gen.sendLag.p99, 2)}/${f(m.gen.sendLag.max, 1)} ms, `
      + `event-loop delay p99: bridge ${f(m.bridge.loopDelayP99Ms)} ms, generator ${f(m.gen.loopDelayP99Ms)} ms, model ${f(m.model.loopDelayP99Ms)} ms; `
      + `forced GC for the RSS reading: ${f(m.rss.gcPauseMs)} ms (excluded)`,
    `  bridge GC pauses: ${f(m.bridge.gcPauseTotalMs, 0)} ms in total, longest ${f(m.bridge.gcPauseMaxMs)} ms`,
    `  messages: ${m.gen.mediaIn} media in, ${m.gen.marksIn} marks in / ${m.gen.marksEchoed} echoed, ${m.gen.clears} clears; `
      + `model saw ${m.model.sessions} sessions, ${m.model.appends} appends, sent ${m.model.deltas} deltas`,
  ];
  const problems: string[] = [];
  for (const [k, v] of Object.entries(m.gen.errors)) problems.push(`generator ${k}: ${v}`);
  if (m.bridge.errors) problems.push(`bridge error lines: ${m.bridge.errors}`);
  if (m.model.errorEvents) problems.push(`model error events: ${Object.entries(m.model.errorCodes).map(([k, v]) => `${k} x${v}`).join(', ')}`);
  if (m.gen.barge.falseClears) problems.push(`clears without a barge-in: ${m.gen.barge.falseClears}`);
  if (m.gen.barge.missed) problems.push(`barge-ins without a clear: ${m.gen.barge.missed} (bot still heard at hang-up: ${m.gen.barge.notSilenced})`);
  if (m.gen.barge.noBotAudio) problems.push(`barge-in frames sent while no bot audio played: ${m.gen.barge.noBotAudio}`);
  if (m.latency.unmatchedCalls) problems.push(`calls whose appends the model could not identify: ${m.latency.unmatchedCalls}`);
  if (m.latency.misalignedCalls) problems.push(`calls whose appends did not line up with their frames: ${m.latency.misalignedCalls}`);
  if (m.latency.inboundLost) problems.push(`frames that never reached the model: ${m.latency.inboundLost}`);
  if (m.latency.negative) problems.push(`negative latencies (pairing errors): ${m.latency.negative}`);
  if (m.leftOpen) problems.push(`calls still open in the bridge 5 s after the load: ${m.leftOpen}`);
  if (problems.length) lines.push(`  problems: ${problems.join('; ')}`);
  for (const s of m.gen.errorSamples.slice(0, 5)) lines.push(`    e.g. ${s}`);
  for (const s of m.bridge.errorLines.slice(0, 3)) lines.push(`    bridge: ${s}`);
  return lines.join('\n');
}

export function formatRamp(r: RampResult, limitMs: number): string {
  const rows: string[][] = [['calls', 'inbound p50/p99 ms', 'outbound p50/p99 ms', 'barge-in p99 ms', 'bridge CPU%', 'gen CPU%', 'model CPU%', 'machine', 'gen lag p99', 'result']];
  for (const s of r.steps) {
    const c = s.m.cpu;
    rows.push([
      String(s.calls), pair(s.m.latency.inbound, 2), pair(s.m.latency.outbound, 2), f(s.m.latency.barge.p99),
      f((c.bridgeS / c.wallS) * 100, 0), f((c.generatorS / c.wallS) * 100, 0), f((c.modelS / c.wallS) * 100, 0),
      `${f(c.machineBusy * 100, 0)}%`, f(s.m.gen.sendLag.p99, 1), s.pass ? 'held' : s.why,
    ]);
  }
  return [`ramp ${r.spec.label} (criterion: p99 added latency <= ${limitMs} ms both ways, no errors):`, table(rows),
    `  most concurrent calls held: ${r.held || 'none'}; stopped by: ${r.limit}`].join('\n');
}

export function formatSoak(s: SoakResult): string {
  const first = s.points[0];
  const warm = s.points[1] ?? first;
  const last = s.points[s.points.length - 1];
  const sign = (x: number) => `${x >= 0 ? '+' : ''}${f(x / MiB)}`;
  const trend = s.points.map((p) => `${p.calls}: ${f(p.rss / MiB)}`).join(', ');
  return [
    `soak ${s.spec.label}: ${s.calls} calls of ${s.seconds} s, ${s.concurrency} concurrent, in ${f(s.wallS, 0)} s; `
      + `${s.completed} completed, ${s.errors} errors${s.errors ? ` (${Object.entries(s.errorKinds).map(([k, v]) => `${k} x${v}`).join(', ')})` : ''}`,
    `  bridge RSS after full GC, MiB: before ${f(first.rss / MiB)} -> after ${f(last.rss / MiB)} (${sign(last.rss - first.rss)}); `
      + `after the first ${warm.calls} calls ${f(warm.rss / MiB)} -> after ${last.calls} (${sign(last.rss - warm.rss)})`,
    `  of which: JS heap ${f(first.heapUsed / MiB)} -> ${f(last.heapUsed / MiB)}; external ${f(first.external / MiB)} -> ${f(last.external / MiB)}; `
      + `WASM memory ${f(first.wasmBytes / MiB)} -> ${f(last.wasmBytes / MiB)} (resident ${f((first.wasmRss || 0) / MiB)} -> ${f((last.wasmRss || 0) / MiB)}); `
      + `rest (code, native allocator, sockets) ${f((first.rss - first.heapUsed - (first.wasmRss || 0)) / MiB)} -> ${f((last.rss - last.heapUsed - (last.wasmRss || 0)) / MiB)}`,
    `  RSS by calls done (MiB): ${trend}`,
    `  bridge CPU ${f(s.cpuPerCallSecond * 1000, 3)} ms per call-second (short calls: setup and teardown included); calls left open: ${s.leftOpen}`,
  ].join('\n');
}

export function formatTargets(ms: LoadMeasurement[], ramps: RampResult[], soaks: SoakResult[]): string {
  const by = new Map(ms.map((m) => [m.spec.key, m]));
  const out: string[] = ['targets (informational):'];
  const mark = (ok: boolean | undefined) => (ok === undefined ? '?' : ok ? 'met' : 'NOT met');
  const vb24 = by.get('vb24k');
  const vbu = by.get('vbpcmu');
  const a = by.get('transcoding');
  const b = by.get('passthrough');
  if (vb24 && a) {
    const r = a.cpuPerCallSecond / vb24.cpuPerCallSecond;
    out.push(`  >= 10x less CPU per call than (a): ${f(r)}x - ${mark(r >= 10)}`);
  }
  if (vbu && b) {
    const r = b.cpuPerCallSecond / vbu.cpuPerCallSecond;
    out.push(`  >= 3x less CPU per call than (b): ${f(r)}x - ${mark(r >= 3)}`);
  }
  for (const m of [vb24, vbu]) {
    if (!m) continue;
    out.push(`  1,000 calls per core (${m.spec.label}): ${f(callsPerCore(m), 0)} - ${mark(callsPerCore(m) >= 1000)}`);
    const p99 = Math.max(m.latency.inbound.p99, m.latency.outbound.p99);
    out.push(`  p99 added latency <= 5 ms at ${m.concurrency} calls (${m.spec.label}): ${f(p99, 2)} ms - ${mark(p99 <= 5)}`);
    out.push(`  <= 100 KB RSS per extra call (${m.spec.label}): ${f(m.rss.perCall / 1024)} KB (JS heap + WASM: ${f(managedPerCall(m) / 1024)} KB) - ${mark(m.rss.perCall <= 100 * 1024)}`);
  }
  for (const r of ramps) if (r.spec.kind === 'voicebridge') out.push(`  ramp ${r.spec.label}: ${r.held} calls held; limit: ${r.limit}`);
  for (const s of soaks) {
    // The first chunks bring every per-call structure and allocator pool up to the soak's
    // concurrency; a leak shows as growth that goes on through the second half.
    const mid = s.points.find((p) => p.calls >= s.calls / 2) ?? s.points[0];
    const last = s.points[s.points.length - 1];
    const growth = last.rss - mid.rss;
    const wasm = (last.wasmRss || 0) - (mid.wasmRss || 0);
    out.push(`  no RSS growth after ${s.calls} calls (${s.spec.label}): ${growth >= 0 ? '+' : ''}${f(growth / MiB)} MiB over the second half `
      + `(calls ${mid.calls} -> ${last.calls}, ${f(growth / Math.max(1, last.calls - mid.calls), 0)} bytes per call`
      + `${last.wasmBytes ? `; of which WASM resident ${wasm >= 0 ? '+' : ''}${f(wasm / MiB)} MiB inside a WASM memory that stayed ${f(last.wasmBytes / MiB, 0)} MiB, `
        + `everything else ${growth - wasm >= 0 ? '+' : ''}${f((growth - wasm) / MiB)} MiB` : ''}) - ${mark(growth < 2 * MiB)}`);
  }
  return out.join('\n');
}
