// The orchestrator: starts the local model and the load generator in their own processes, then
// each bridge under test in a fresh process, runs the same load against each, and measures the
// bridge process from the outside (/proc CPU time and RSS) while the generator and the model
// measure latency on the shared monotonic clock.
import { setTimeout as sleep } from 'node:timers/promises';
import { analyze, type Latencies } from './analyze.js';
import type { BridgeKind, BridgeMemory, BridgeStats } from './bridge-proc.js';
import { Child } from './child.js';
import { monoMs } from './clock.js';
import type { LoadOptions, LoadResult } from './generator.js';
import type { ModelCollect } from './model-proc.js';
import { cpuSeconds, cpuTimes, machineCpu as readMachine, rssBytes, runQueueWaitSeconds } from './proc.js';
import { median } from './stats.js';

export interface BridgeSpec {
  /** Short key: vb24k, transcoding, vbpcmu, passthrough. */
  key: string;
  label: string;
  kind: BridgeKind;
  format: 'pcm24k' | 'pcmu';
}

export const BRIDGES: Record<string, BridgeSpec> = {
  vb24k: { key: 'vb24k', label: 'voicebridge pcm24k', kind: 'voicebridge', format: 'pcm24k' },
  transcoding: { key: 'transcoding', label: '(a) transcoding', kind: 'transcoding', format: 'pcm24k' },
  vbpcmu: { key: 'vbpcmu', label: 'voicebridge pcmu', kind: 'voicebridge', format: 'pcmu' },
  passthrough: { key: 'passthrough', label: '(b) passthrough', kind: 'passthrough', format: 'pcmu' },
  floor: { key: 'floor', label: 'I/O floor (pcmu)', kind: 'floor', format: 'pcmu' },
};

export interface HarnessOptions {
  /** Audio per model delta, ms. */
  deltaMs: number;
  /** Model delta pacing, x real time. */
  speed: number;
  /** Longest call (the bot's answer lasts this long). */
  botSeconds: number;
  log?: (line: string) => void;
}

export interface CpuWindow {
  wallS: number;
  bridgeS: number;
  /** Of bridgeS, in the kernel (socket syscalls). */
  bridgeSysS: number;
  generatorS: number;
  modelS: number;
  /** Whole machine, busy fraction of all cores (includes other people's work). */
  machineBusy: number;
  /** Seconds each event loop (bridge, generator, model) was runnable but had no CPU. */
  bridgeWaitS: number;
  generatorWaitS: number;
  modelWaitS: number;
}

export interface LoadMeasurement {
  spec: BridgeSpec;
  calls: number;
  concurrency: number;
  seconds: number;
  gen: LoadResult;
  model: Omit<ModelCollect, 'records'>;
  latency: Latencies;
  cpu: CpuWindow;
  /** Bridge CPU seconds per call-second. */
  cpuPerCallSecond: number;
  rss: {
    /** After a full GC, no calls. */
    idle: number;
    /** After a full GC in the middle of the steady state. */
    loaded: number;
    perCall: number;
    /** Median of the samples taken during the steady state without forcing a GC. */
    loadedNoGc: number;
    gcPauseMs: number;
    idleMem: BridgeMemory;
    /** After the forced GC under load (null if the run ended first). */
    loadedMem: BridgeMemory | null;
  };
  bridge: BridgeStats;
  /** Calls the bridge still held 5 s after the load ended. */
  leftOpen: number;
  /**
   * Failures of the bridging itself: generator-side socket/protocol errors, error lines the
   * bridge logged, clears without a barge-in, calls left open, calls the model could not match.
   */
  errors: number;
  /** Error events the model sent back: requests of the bridge the model rejected. */
  modelErrors: number;
}

export class Harness {
  model!: Child;
  gen!: Child;
  modelUrl = '';
  private readonly log: (line: string) => void;

  constructor(readonly opts: HarnessOptions) {
    this.log = opts.log ?? (() => {});
  }

  async start(): Promise<void> {
    this.model = new Child('model', 'model-proc');
    this.gen = new Child('generator', 'generator-proc');
    await Promise.all([this.model.waitEvent('ready'), this.gen.waitEvent('ready')]);
    const m = await this.model.request<{ url: string }>('start', {
      deltaMs: this.opts.deltaMs, speed: this.opts.speed, botSeconds: this.opts.botSeconds,
    });
    this.modelUrl = m.url;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.gen?.stop(), this.model?.stop()]);
  }

  async startBridge(spec: BridgeSpec): Promise<BridgeUnderTest> {
    const child = new Child(spec.label, 'bridge-proc', [spec.kind, this.modelUrl, spec.format], {
      // LOADTEST_BRIDGE_EXEC_ARGV: e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the bridges.
      execArgv: ['--expose-gc', ...(process.env.LOADTEST_BRIDGE_EXEC_ARGV ?? '').split(' ').filter(Boolean)],
      env: { LOG_LEVEL: process.env.LOADTEST_BRIDGE_LOG_LEVEL || 'warn' },
    });
    const { port } = await child.waitEvent<{ port: number }>('ready', 60_000);
    return new BridgeUnderTest(this, spec, child, `ws://127.0.0.1:${port}/media-stream`);
  }
}

export type IdleState = BridgeMemory;

export class BridgeUnderTest {
  constructor(readonly h: Harness, readonly spec: BridgeSpec, readonly child: Child, readonly url: string) {}

  get pid(): number {
    return this.child.pid;
  }

  stats(): Promise<BridgeStats> {
    return this.child.request<BridgeStats>('stats');
  }

  async gc(): Promise<void> {
    await this.child.request('gc');
  }

  /** RSS (and heap, WASM memory) after a full GC with no calls: the process before any load. */
  async idle(): Promise<IdleState> {
    await sleep(300);
    await this.gc();
    await sleep(200);
    return this.child.request<BridgeMemory>('memory');
  }

  /** A few short calls: loads the WASM module, JITs the hot paths, opens the first sockets. */
  async warmUp(): Promise<void> {
    await this.h.model.request('reset', { measure: false });
    await this.h.gen.request('run', { url: this.url, calls: 6, seconds: 3, measure: false, bargeIn: false } satisfies LoadOptions);
  }

  async waitIdle(timeoutMs = 5000): Promise<number> {
    const until = Date.now() + timeoutMs;
    let s = await this.stats();
    while (s.activeCalls > 0 && Date.now() < until) {
      await sleep(100);
      s = await this.stats();
    }
    return s.activeCalls;
  }

  /**
   * One load against this bridge, measured. Halfway through the steady state the bridge does a
   * full GC and its RSS is read: comparable with the idle RSS (also after a full GC), so the
   * difference is what the calls hold, not garbage awaiting collection. Frames in flight during
   * that forced GC are left out of the latency figures.
   */
  async measure(load: Omit<LoadOptions, 'url'>, idle: IdleState): Promise<LoadMeasurement> {
    const { h } = this;
    const measure = load.measure ?? true;
    await h.model.request('reset', { measure });
    await this.child.request('loopReset');
    const statsBefore = await this.stats();
    const pids = [this.pid, h.gen.pid, h.model.pid];
    const cpu0 = pids.map(cpuSeconds);
    const wait0 = pids.map(runQueueWaitSeconds);
    const sys0 = cpuTimes(this.pid).sys;
    const m0 = readMachine();
    const t0 = monoMs();
    const rssSamples: Array<{ t: number; rss: number }> = [];
    const sampler = setInterval(() => {
      try {
        rssSamples.push({ t: monoMs(), rss: rssBytes(this.pid) });
      } catch {
        // process gone; reported elsewhere
      }
    }, 250);
    const concurrency = Math.min(load.calls, load.concurrency ?? load.calls);
    const rampMs = load.rampMs ?? Math.min(3000, Math.max(200, concurrency * 5));
    const gcAtMs = rampMs + Math.max(500, (load.seconds * 1000) / 2);
    let gcWindow: [number, number] | undefined;
    let loadedMem: BridgeMemory | undefined;
    const gcTimer = setTimeout(() => {
      const g0 = monoMs();
      void this.gc()
        .then(async () => {
          const g1 = monoMs();
          gcWindow = [g0 - 60, g1 + 60];
          await sleep(50);
          loadedMem = await this.child.request<BridgeMemory>('memory');
        })
        .catch(() => {});
    }, gcAtMs);
    let gen: LoadResult;
    try {
      gen = await h.gen.request<LoadResult>('run', { ...load, url: this.url } satisfies LoadOptions);
    } finally {
      clearInterval(sampler);
      clearTimeout(gcTimer);
    }
    const t1 = monoMs();
    const cpu1 = pids.map(cpuSeconds);
    const wait1 = pids.map(runQueueWaitSeconds);
    const sys1 = cpuTimes(this.pid).sys;
    const m1 = readMachine();
    const bridgeAfter = await this.stats();
    const leftOpen = await this.waitIdle();
    const modelData = await h.model.request<ModelCollect>('collect');
    const latency = analyze(gen, modelData, h.opts.speed, gcWindow ? [gcWindow] : []);

    const steady = rssSamples.filter((s) => s.t >= gen.steadyFrom + 1000 && s.t <= gen.steadyTo
      && !(gcWindow && s.t >= gcWindow[0] && s.t <= gcWindow[1] + 300)).map((s) => s.rss);
    const loadedNoGc = steady.length ? median(steady) : NaN;
    const loaded = loadedMem ? loadedMem.rss : loadedNoGc;
    const { records: _records, ...modelSummary } = modelData;
    const bridgeErrors = bridgeAfter.errors - statsBefore.errors;
    const genErrors = Object.values(gen.errors).reduce((a, b) => a + b, 0);
    const cpu: CpuWindow = {
      wallS: (t1 - t0) / 1000,
      bridgeS: cpu1[0] - cpu0[0],
      bridgeSysS: sys1 - sys0,
      generatorS: cpu1[1] - cpu0[1],
      modelS: cpu1[2] - cpu0[2],
      machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total),
      bridgeWaitS: wait1[0] - wait0[0],
      generatorWaitS: wait1[1] - wait0[1],
      modelWaitS: wait1[2] - wait0[2],
    };
    return {
      spec: this.spec,
      calls: load.calls,
      concurrency,
      seconds: load.seconds,
      gen,
      model: modelSummary,
      latency,
      cpu,
      cpuPerCallSecond: gen.callSeconds > 0 ? cpu.bridgeS / gen.callSeconds : NaN,
      rss: {
        idle: idle.rss, loaded, perCall: (loaded - idle.rss) / concurrency, loadedNoGc,
        gcPauseMs: gcWindow ? gcWindow[1] - gcWindow[0] - 120 : NaN,
        idleMem: idle, loadedMem: loadedMem ?? null,
      },
      bridge: bridgeAfter,
      leftOpen,
      errors: genErrors + bridgeErrors + gen.barge.falseClears + leftOpen + latency.unmatchedCalls + latency.misalignedCalls,
      modelErrors: modelData.errorEvents,
    };
  }

  async stop(): Promise<void> {
    await this.child.stop();
  }
}

export interface ScenarioOptions {
  /** A few short calls before measuring (JIT, WASM, first sockets). Default true. */
  warmUp?: boolean;
}

/** Fresh bridge, warm-up, idle RSS, one measured load, bridge stopped. */
export async function runScenario(
  h: Harness, spec: BridgeSpec, load: Omit<LoadOptions, 'url'>, opts: ScenarioOptions = {},
  started?: Promise<BridgeUnderTest>,
): Promise<LoadMeasurement> {
  const b = await (started ?? h.startBridge(spec));
  try {
    if (opts.warmUp ?? true) await b.warmUp();
    return await b.measure(load, await b.idle());
  } finally {
    await b.stop();
  }
}

/**
 * The same load against each bridge in turn (one bridge process alive at a time, unless
 * `parallelStart`, which starts them all at once to save time in tests).
 */
export async function compareBridges(
  h: Harness, keys: string[], load: Omit<LoadOptions, 'url'>,
  opts: ScenarioOptions & { parallelStart?: boolean; onStart?: (spec: BridgeSpec) => void } = {},
): Promise<LoadMeasurement[]> {
  const specs = keys.map((k) => {
    const spec = BRIDGES[k];
    if (!spec) throw new Error(`unknown bridge ${k}`);
    return spec;
  });
  const started = opts.parallelStart ? specs.map((s) => h.startBridge(s)) : [];
  // A bridge that fails to start must not leave its siblings running.
  for (const p of started) p.catch(() => {});
  const out: LoadMeasurement[] = [];
  try {
    for (let i = 0; i < specs.length; i++) {
      opts.onStart?.(specs[i]);
      out.push(await runScenario(h, specs[i], load, opts, started[i]));
    }
  } finally {
    for (let i = out.length + 1; i < started.length; i++) await started[i].then((b) => b.stop(), () => {});
  }
  return out;
}

export interface RampStep {
  calls: number;
  m: LoadMeasurement;
  p99: number;
  pass: boolean;
  why: string;
}

export interface RampResult {
  spec: BridgeSpec;
  steps: RampStep[];
  /**
   * Most concurrent calls held with p99 added latency <= the limit and no errors (0: none). Model
   * error events do not fail a step (the sample-like baselines' truncate is rejected on every
   * barge-in); they are shown.
   */
  held: number;
  /** What ran out at the first failing step. */
  limit: string;
}

/**
 * What ran out during a step: a process using most of a core (Node runs each event loop on one
 * core), or the whole machine (2 cores shared by the bridge, the generator, the model and
 * whatever else runs there), told by how long each event loop waited for a CPU while runnable.
 */
export function limitingProcess(m: LoadMeasurement): string {
  const w = m.cpu.wallS;
  const pct = (f: number) => `${Math.round(f * 100)}%`;
  const use = [
    { who: 'bridge', f: m.cpu.bridgeS / w, wait: m.cpu.bridgeWaitS / w },
    { who: 'generator', f: m.cpu.generatorS / w, wait: m.cpu.generatorWaitS / w },
    { who: 'model', f: m.cpu.modelS / w, wait: m.cpu.modelWaitS / w },
  ];
  const detail = use.map((u) => `${u.who} ${pct(u.f)} cpu / waited ${Math.round(u.wait * 1000)} ms/s`).join(', ');
  const lag = `generator send lag p99 ${m.gen.sendLag.p99.toFixed(1)} ms`;
  const top = [...use].sort((a, b) => b.f - a.f)[0];
  if (top.f >= 0.85) return `${top.who} saturated its core (${detail}; ${lag})`;
  if (m.cpu.machineBusy >= 0.85) return `machine CPU-bound, ${pct(m.cpu.machineBusy)} busy (${detail}; ${lag})`;
  return `no CPU limit seen (${detail}; machine ${pct(m.cpu.machineBusy)} busy; ${lag})`;
}

export async function runRamp(
  h: Harness, spec: BridgeSpec, steps: number[], seconds: number, limitMs: number,
  log: (line: string) => void,
): Promise<RampResult> {
  const b = await h.startBridge(spec);
  const out: RampStep[] = [];
  let held = 0;
  let limit = 'not reached';
  try {
    await b.warmUp();
    const idle = await b.idle();
    for (const calls of steps) {
      let m: LoadMeasurement | undefined;
      let why = '';
      let p99 = NaN;
      // A step that fails on latency alone is run again once: the machine is shared, and one
      // burst of someone else's work should not end the ramp.
      for (let attempt = 0; attempt < 2; attempt++) {
        m = await b.measure({ calls, seconds, measure: true, bargeIn: true }, idle);
        p99 = Math.max(m.latency.inbound.p99, m.latency.outbound.p99);
        const matchedShare = m.latency.matchedCalls / Math.max(1, calls);
        why = '';
        if (m.errors > 0) why = `${m.errors} errors`;
        else if (matchedShare < 0.95) why = `only ${m.latency.matchedCalls}/${calls} calls measured`;
        else if (!(p99 <= limitMs)) why = `p99 ${p99.toFixed(1)} ms > ${limitMs} ms`;
        log(`  ${spec.label}: ${calls} calls${attempt ? ' (again)' : ''}: p99 in ${m.latency.inbound.p99.toFixed(1)} / out ${m.latency.outbound.p99.toFixed(1)} ms, `
          + `${why ? `FAILED: ${why}` : 'held'}; ${limitingProcess(m)}`);
        if (!why.startsWith('p99')) break;
        await b.waitIdle(10_000);
      }
      const pass = why === '';
      out.push({ calls, m: m!, p99, pass, why });
      if (!pass) {
        limit = `${why} at ${calls} calls; ${limitingProcess(m!)}`;
        break;
      }
      held = calls;
      await b.waitIdle(10_000);
      await sleep(500);
    }
  } finally {
    await b.stop();
  }
  return { spec, steps: out, held, limit };
}

export interface SoakResult {
  spec: BridgeSpec;
  calls: number;
  concurrency: number;
  seconds: number;
  completed: number;
  errors: number;
  errorKinds: Record<string, number>;
  wallS: number;
  cpuPerCallSecond: number;
  /** RSS/heap after a full GC: before the soak, after each chunk, and at the end. */
  points: Array<{ calls: number } & BridgeMemory>;
  leftOpen: number;
}

export async function runSoak(
  h: Harness, spec: BridgeSpec, total: number, concurrency: number, seconds: number,
  log: (line: string) => void,
): Promise<SoakResult> {
  const b = await h.startBridge(spec);
  const chunk = Math.min(total, Math.max(concurrency * 5, 1000));
  const points: SoakResult['points'] = [];
  let done = 0;
  let completed = 0;
  let errors = 0;
  let callSeconds = 0;
  const errorKinds: Record<string, number> = {};
  try {
    await b.warmUp();
    const snap = async () => {
      points.push({ calls: done, ...await b.idle() });
      return b.stats();
    };
    const s0 = await snap();
    await h.model.request('reset', { measure: false });
    const cpu0 = cpuSeconds(b.pid);
    const t0 = monoMs();
    while (done < total) {
      const n = Math.min(chunk, total - done);
      const r = await h.gen.request<LoadResult>('run', {
        url: b.url, calls: n, concurrency, seconds, idBase: done, measure: false, bargeIn: false,
      } satisfies LoadOptions);
      done += n;
      completed += r.completed;
      callSeconds += r.callSeconds;
      for (const [k, v] of Object.entries(r.errors)) {
        errorKinds[k] = (errorKinds[k] ?? 0) + v;
        errors += v;
      }
      await b.waitIdle(10_000);
      const s = await snap();
      const p = points[points.length - 1];
      const mib = (x: number) => (x / 2 ** 20).toFixed(1);
      void s;
      log(`  ${spec.label} soak: ${done}/${total} calls, ${completed} completed, ${errors} errors; after GC: RSS ${mib(p.rss)} MiB `
        + `(WASM resident ${mib(p.wasmRss || 0)} of ${mib(p.wasmBytes)}, JS heap ${mib(p.heapUsed)}, external ${mib(p.external)})`);
    }
    const cpu1 = cpuSeconds(b.pid);
    const t1 = monoMs();
    const leftOpen = await b.waitIdle();
    const sEnd = await b.stats();
    const bridgeErrors = sEnd.errors - s0.errors;
    if (bridgeErrors > 0) errorKinds.bridge_logged_errors = bridgeErrors;
    const modelData = await h.model.request<ModelCollect>('collect');
    if (modelData.errorEvents > 0) errorKinds.model_error_events = modelData.errorEvents;
    return {
      spec, calls: total, concurrency, seconds, completed,
      errors: errors + bridgeErrors + modelData.errorEvents + leftOpen, errorKinds,
      wallS: (t1 - t0) / 1000, cpuPerCallSecond: (cpu1 - cpu0) / callSeconds, points, leftOpen,
    };
  } finally {
    await b.stop();
  }
}
