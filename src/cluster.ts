// Process layout: WORKERS worker threads, each running its own bridge (uWS app on the same port:
// uSockets listens with SO_REUSEPORT on Linux, so the kernel spreads connections over the
// threads; each thread has its own WASM instance and pacer). The main thread serves nothing: it
// starts and restarts workers, answers /metrics for all of them (a worker's /metrics asks it),
// watches that every worker still answers, and runs the drain on SIGTERM:
//   /readyz 503 and new upgrades 503 on every worker -> active calls continue for up to
//   DRAIN_SECONDS -> the rest end through Call.end('shutdown') -> workers exit -> exit 0.
// WORKERS=0 runs one bridge in the main thread with the same drain.
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createLimitsState, reclaimWorker, MAX_WORKERS } from './limits.js';
import { aggregateMetrics, ProcessMetrics, type MetricsJson } from './metrics.js';
import { createHealthState, createOps, markUnhealthy, unhealthyWorker } from './workers/ops.js';
import type { BridgeWorkerData, FromWorker, ToWorker } from './workers/protocol.js';
import { bridgeControl, type StartBridgeFn } from './workers/runtime.js';

export type { BridgeControl, BridgeServerLike, StartBridgeFn } from './workers/runtime.js';

export const DEFAULT_DRAIN_SECONDS = 30;

/** The environment variables of this module, with their defaults and meaning (for config.ts). */
export const CLUSTER_ENV = [
  { env: 'WORKERS', default: '(os.availableParallelism())', doc: 'Bridge worker threads sharing the port (own uWS app and WASM each). 0: one bridge in the main thread. In containers set it to the CPU limit: the default counts the host\'s CPUs.' },
  { env: 'DRAIN_SECONDS', default: '30', doc: 'On SIGTERM: not ready and no new calls at once; active calls continue up to this long, then end cleanly ("shutdown"). Keep the pod\'s terminationGracePeriodSeconds above it.' },
] as const;

export interface ClusterConfig {
  workers: number;
  drainSeconds: number;
}

export function defaultWorkers(): number {
  return availableParallelism();
}

// ---- drain sequence (both modes) ---------------------------------------------------------------

export interface DrainTarget {
  /** Stop accepting everywhere; resolves with the calls still active. */
  drain(): Promise<number>;
  activeCalls(): Promise<number>;
  /** End the remaining calls ('shutdown') and stop; resolves when stopped. */
  close(): Promise<void>;
}

export interface DrainReport {
  activeAtStart: number;
  /** Calls still active when the wait ended (ended with 'shutdown'). */
  activeAtClose: number;
  waitedMs: number;
  /** Why the wait ended. */
  ended: 'idle' | 'deadline' | 'hurried';
  /** Cluster mode: worker threads that did not exit (the process cannot exit cleanly). */
  stuckWorkers?: number;
}

/**
 * Stop accepting, wait until no call is left or `drainSeconds` passed (or `hurried()`), then
 * close. `wake` lets a hurry end the current wait at once.
 */
export async function drainSequence(
  target: DrainTarget,
  drainSeconds: number,
  ctl: { hurried?: () => boolean; wake?: (fn: () => void) => void; pollMs?: number } = {},
): Promise<DrainReport> {
  const t0 = performance.now();
  const deadline = t0 + drainSeconds * 1000;
  const pollMs = ctl.pollMs ?? 250;
  const activeAtStart = await target.drain();
  let active = activeAtStart;
  let ended: DrainReport['ended'] = 'idle';
  while (active > 0) {
    if (ctl.hurried?.()) { ended = 'hurried'; break; }
    const left = deadline - performance.now();
    if (left <= 0) { ended = 'deadline'; break; }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(pollMs, left));
      ctl.wake?.(() => { clearTimeout(timer); resolve(); });
    });
    active = await target.activeCalls();
  }
  await target.close();
  return { activeAtStart, activeAtClose: active, waitedMs: Math.round(performance.now() - t0), ended };
}

class Hurry {
  private flag = false;
  private wakers: (() => void)[] = [];
  readonly hurried = () => this.flag;
  readonly wake = (fn: () => void) => { this.wakers.push(fn); };
  hurry(): void {
    this.flag = true;
    const w = this.wakers;
    this.wakers = [];
    for (const fn of w) fn();
  }
}

// ---- worker threads ----------------------------------------------------------------------------

/** The worker module and how to start it: compiled JS directly; TS source through tsx's loader. */
export function workerSpec(entry: URL): { filename: string | URL; options: WorkerOptions } {
  if (!entry.pathname.endsWith('.ts')) return { filename: entry, options: {} };
  // Node 20 resolves a worker's main module before --import hooks apply, so a .ts entry is
  // loaded by a tiny bootstrap that registers tsx first. The inherited tsx flags are dropped so
  // the hooks are not registered twice.
  const execArgv: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const a = process.execArgv[i];
    const next = process.execArgv[i + 1] ?? '';
    if ((a === '--import' || a === '--require' || a === '--loader' || a === '-r') && next.includes('tsx')) { i++; continue; }
    if (/^--(import|require|loader)=.*tsx/.test(a)) continue;
    execArgv.push(a);
  }
  const code = `import(${JSON.stringify(tsxApiUrl())}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })` +
    '.catch((e) => { process.nextTick(() => { throw e; }); });';
  return { filename: code, options: { eval: true, execArgv } };
}

function tsxApiUrl(): string {
  const resolve = (import.meta as { resolve?: (s: string) => string }).resolve;
  if (typeof resolve === 'function') return resolve('tsx/esm/api');
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  return pathToFileURL(pkg.replace(/package\.json$/, 'dist/esm/api/index.mjs')).href;
}

export function defaultWorkerEntry(): URL {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./workers/entry${ext}`, import.meta.url);
}

export interface ClusterOptions {
  config: Config;
  log: Logger;
  workers: number;
  drainSeconds?: number;
  /** Worker module (default: ./workers/entry.{ts,js}); tests pass a fake bridge. */
  entry?: URL;
  /** How often each worker is pinged, and how long without an answer before /healthz fails. */
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  /** Per-request bound for status/metrics answers from a worker. */
  requestTimeoutMs?: number;
  /** How long workers get to exit after `close` (they close their sockets within ~1 s). */
  closeTimeoutMs?: number;
  /** More than `count` worker failures within `windowMs` is fatal (the process should exit). */
  restartLimit?: { count: number; windowMs: number };
  /** Called on a fatal condition after start (crash loop). Default: log, drain, exit(1). */
  onFatal?: (err: Error) => void;
}

interface Slot {
  index: number;
  worker: Worker;
  state: 'starting' | 'ready' | 'closing' | 'exited';
  lastPong: number;
  /** Set when the worker reported an uncaught error (it is closing itself). */
  fatal?: string;
  exited: Promise<number>;
}

interface Pending {
  slot: Slot;
  resolve: (m: FromWorker | undefined) => void;
  timer: NodeJS.Timeout;
}

/**
 * The worker pool. A uWS worker thread cannot be stopped from outside without aborting the
 * process (see src/workers/runtime.ts), so this class never calls worker.terminate(): workers
 * are told to close and exit by themselves; one that stops answering fails /healthz instead.
 */
export class Cluster {
  port = 0;
  restarts = 0;
  /** Workers that did not exit within closeTimeoutMs of `close` (the process must be killed). */
  stuck = 0;
  readonly size: number;
  readonly processMetrics: ProcessMetrics;
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private readonly limitsState = createLimitsState();
  readonly healthState = createHealthState();
  private readonly failureTimes: number[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private draining = false;
  private drainPromise: Promise<DrainReport> | undefined;
  private readonly hurryCtl = new Hurry();
  private readonly entry: URL;
  private readonly log: Logger;

  constructor(private readonly opts: ClusterOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > MAX_WORKERS) {
      throw new RangeError(`workers must be 1..${MAX_WORKERS}, got ${opts.workers}`);
    }
    this.size = opts.workers;
    this.entry = opts.entry ?? defaultWorkerEntry();
    this.log = opts.log;
    this.processMetrics = new ProcessMetrics();
  }

  /** Starts every worker; resolves once all listen (rejects, with all stopped, if one cannot). */
  async start(): Promise<void> {
    try {
      // uSockets shares a port between threads (SO_REUSEPORT) only when it is given one:
      // PORT=0 is resolved to a free port here first.
      const port = this.opts.config.port || await freePort(this.opts.config.host);
      this.port = await this.spawn(0, port);
      const rest = [];
      for (let i = 1; i < this.size; i++) rest.push(this.spawn(i, this.port));
      const results = await Promise.allSettled(rest);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (e) {
      await this.closeAll();
      throw e;
    }
    this.heartbeat = setInterval(() => this.beat(), this.opts.heartbeatMs ?? 5000);
    this.heartbeat.unref();
  }

  private spawn(index: number, port: number): Promise<number> {
    const data: BridgeWorkerData = {
      config: this.opts.config, index, port, limitsState: this.limitsState, healthState: this.healthState,
    };
    const spec = workerSpec(this.entry);
    const worker = new Worker(spec.filename, { ...spec.options, workerData: data, name: `voicebridge-${index}` });
    let exitResolve!: (code: number) => void;
    const slot: Slot = {
      index, worker, state: 'starting', lastPong: performance.now(),
      exited: new Promise<number>((r) => { exitResolve = r; }),
    };
    this.slots[index] = slot;
    return new Promise<number>((resolve, reject) => {
      let lastError: Error | undefined;
      worker.on('message', (m: FromWorker) => {
        switch (m.t) {
          case 'ready':
            if (slot.state === 'starting') slot.state = 'ready';
            slot.lastPong = performance.now();
            this.processMetrics.workers.inc();
            resolve(m.port);
            return;
          case 'failed':
            lastError = new Error(`worker ${index} could not start: ${m.error}`);
            return;
          case 'fatal':
            slot.fatal = m.error;
            return;
          default:
            this.onMessage(slot, m);
        }
      });
      worker.on('error', (e) => {
        lastError = e;
        this.log.error({ worker: index, err: e.stack ?? e.message }, 'worker thread error');
      });
      worker.on('exit', (code) => {
        const listened = slot.state === 'ready' || slot.state === 'closing';
        const expected = slot.state === 'closing';
        if (listened) this.processMetrics.workers.dec();
        slot.state = 'exited';
        for (const [id, p] of this.pending) {
          if (p.slot === slot) { clearTimeout(p.timer); this.pending.delete(id); p.resolve(undefined); }
        }
        exitResolve(code);
        if (!listened) {
          reject(lastError ?? new Error(`worker ${index} exited with code ${code} before listening`));
          return;
        }
        if (!expected) this.onWorkerLost(slot, code);
      });
    });
  }

  /** A listening worker exited unasked (after an uncaught error it closed itself): replace it. */
  private onWorkerLost(slot: Slot, code: number): void {
    const freed = reclaimWorker(this.limitsState, slot.index);
    this.restarts++;
    this.processMetrics.restarts.inc();
    this.log.error({ worker: slot.index, code, err: slot.fatal, callSlotsFreed: freed }, 'worker thread ended; its calls were ended');
    if (this.draining) return;
    const now = performance.now();
    const limit = this.opts.restartLimit ?? { count: 5, windowMs: 60_000 };
    this.failureTimes.push(now);
    while (this.failureTimes.length && this.failureTimes[0] < now - limit.windowMs) this.failureTimes.shift();
    if (this.failureTimes.length > limit.count) {
      this.fatal(new Error(`${this.failureTimes.length} worker failures within ${limit.windowMs} ms`));
      return;
    }
    const backoff = Math.min(10_000, 250 * 2 ** (this.failureTimes.length - 1));
    setTimeout(() => {
      if (this.draining) return;
      this.spawn(slot.index, this.port).then(
        () => this.log.warn({ worker: slot.index }, 'worker thread replaced'),
        (e: Error) => {
          this.log.error({ worker: slot.index, err: e.message }, 'worker thread could not be replaced');
          this.onWorkerLost(slot, 1);
        },
      );
    }, backoff).unref();
  }

  private fatal(err: Error): void {
    if (this.opts.onFatal) {
      this.opts.onFatal(err);
      return;
    }
    this.log.fatal({ err: err.message }, 'worker crash loop: stopping');
    void this.drain(0).then(() => process.exit(1));
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'status':
      case 'metrics':
      case 'pong': {
        if (m.t === 'pong') slot.lastPong = performance.now();
        const p = this.pending.get(m.id);
        if (!p) return;
        clearTimeout(p.timer);
        this.pending.delete(m.id);
        p.resolve(m);
        return;
      }
      case 'scrape':
        this.scrape().then(
          (body) => this.send(slot, { t: 'scraped', id: m.id, body }),
          (e: Error) => this.send(slot, { t: 'scraped', id: m.id, error: e.message }),
        );
        return;
      case 'draining':
        this.log.info({ worker: slot.index, activeCalls: m.active }, 'worker draining');
        return;
      default:
        return;
    }
  }

  private send(slot: Slot, m: ToWorker): boolean {
    if (slot.state === 'exited') return false;
    slot.worker.postMessage(m);
    return true;
  }

  private request(slot: Slot, make: (id: number) => ToWorker): Promise<FromWorker | undefined> {
    const id = ++this.seq;
    if (slot.state !== 'ready' && slot.state !== 'closing') return Promise.resolve(undefined);
    this.send(slot, make(id));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, this.opts.requestTimeoutMs ?? 2000);
      this.pending.set(id, { slot, resolve, timer });
    });
  }

  private live(): Slot[] {
    return this.slots.filter((s) => s && (s.state === 'ready' || s.state === 'closing'));
  }

  private beat(): void {
    const timeout = this.opts.heartbeatTimeoutMs ?? 30_000;
    const now = performance.now();
    for (const s of this.slots) {
      if (!s || s.state !== 'ready') continue;
      if (now - s.lastPong > timeout && unhealthyWorker(this.healthState) < 0) {
        // It cannot be stopped from here without aborting every call in the process: fail
        // liveness so the orchestrator replaces the whole process (drain first).
        markUnhealthy(this.healthState, s.index);
        this.log.fatal({ worker: s.index, silentMs: Math.round(now - s.lastPong) }, 'worker thread stopped answering; /healthz now fails');
      }
      void this.request(s, (id) => ({ t: 'ping', id }));
    }
  }

  /** Prometheus text for the whole process: this thread's process metrics plus every worker's. */
  async scrape(): Promise<string> {
    const replies = await Promise.all(this.live().map((s) => this.request(s, (id) => ({ t: 'metrics', id }))));
    const parts: MetricsJson[] = [await this.processMetrics.metricsJson()];
    for (const r of replies) if (r?.t === 'metrics') parts.push(r.json);
    return aggregateMetrics(parts);
  }

  /** Calls active in every worker (workers that do not answer in time count as 0). */
  async activeCalls(): Promise<number> {
    const replies = await Promise.all(this.live().map((s) => this.request(s, (id) => ({ t: 'status', id }))));
    let n = 0;
    for (const r of replies) if (r?.t === 'status') n += r.active;
    return n;
  }

  /** The SIGTERM sequence; resolves when every worker has exited (or is stuck). Idempotent. */
  drain(drainSeconds = this.opts.drainSeconds ?? DEFAULT_DRAIN_SECONDS): Promise<DrainReport> {
    this.drainPromise ??= drainSequence({
      drain: async () => {
        this.draining = true;
        for (const s of this.live()) this.send(s, { t: 'drain' });
        // Each port delivers in order: these answers come after the drain took effect.
        return this.activeCalls();
      },
      activeCalls: () => this.activeCalls(),
      close: () => this.closeAll(),
    }, drainSeconds, { hurried: this.hurryCtl.hurried, wake: this.hurryCtl.wake })
      .then((report) => ({ ...report, stuckWorkers: this.stuck }));
    return this.drainPromise;
  }

  /** Cuts a running drain short: remaining calls are ended now. */
  hurry(): void {
    this.hurryCtl.hurry();
  }

  /** Tells every worker to close and waits for them to exit (bounded by closeTimeoutMs). */
  private async closeAll(): Promise<void> {
    this.draining = true;
    clearInterval(this.heartbeat);
    const slots = this.slots.filter((s) => s && s.state !== 'exited');
    for (const s of slots) {
      this.send(s, { t: 'close' });
      if (s.state === 'ready') s.state = 'closing';
    }
    const timeout = this.opts.closeTimeoutMs ?? 15_000;
    let stuck = 0;
    await Promise.all(slots.map(async (s) => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        s.exited.then(() => false),
        new Promise<boolean>((r) => { timer = setTimeout(() => r(true), timeout); }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        stuck++;
        this.log.error({ worker: s.index }, 'worker thread did not exit after close');
      }
    }));
    this.stuck = stuck;
    this.processMetrics.stop();
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const c = new Cluster(opts);
  await c.start();
  return c;
}

// ---- the `start` command's server --------------------------------------------------------------

export interface RunOptions {
  /** Default: config.workers, else os.availableParallelism(). 0: in-process. */
  workers?: number;
  /** Default: config.drainSeconds, else 30. */
  drainSeconds?: number;
  /** Worker module (cluster mode). */
  entry?: URL;
  /** In-process mode's bridge (default: server.ts startBridge). */
  startBridge?: StartBridgeFn;
  /** Install SIGTERM/SIGINT handlers (default true). */
  signals?: boolean;
  /** After the drain, before exit (e.g. close the embedded local model). */
  onStopped?: () => unknown;
  /** Default process.exit (after a clean drain only: see DrainReport.stuckWorkers). */
  exit?: (code: number) => void;
}

export interface RunningServer {
  port: number;
  /** 0 when in-process. */
  workers: number;
  /** Drains (first call) and stops; a second call cuts the drain short. */
  stop(): Promise<DrainReport>;
  /** Prometheus text for the process. */
  scrape(): Promise<string>;
}

/**
 * Runs the bridge as configured and, unless `signals: false`, drains on SIGTERM/SIGINT and exits
 * 0 (a second signal ends the remaining calls at once).
 */
export async function runServer(config: Config, log: Logger, opts: RunOptions = {}): Promise<RunningServer> {
  const extra = config as Config & Partial<ClusterConfig>;
  const workers = opts.workers ?? extra.workers ?? defaultWorkers();
  const drainSeconds = opts.drainSeconds ?? extra.drainSeconds ?? DEFAULT_DRAIN_SECONDS;
  let running: RunningServer;

  if (workers === 0) {
    const start = opts.startBridge ?? await inProcessBridge();
    const ops = createOps(config);
    const server = await start(config, log, { ops });
    const control = bridgeControl(server, ops);
    const hurry = new Hurry();
    let stopping: Promise<DrainReport> | undefined;
    running = {
      port: control.port,
      workers: 0,
      scrape: () => ops.scrape(),
      stop() {
        if (stopping) { hurry.hurry(); return stopping; }
        stopping = drainSequence({
          drain: async () => control.drain(),
          activeCalls: async () => control.activeCalls(),
          close: async () => { control.close(); ops.stop(); },
        }, drainSeconds, { hurried: hurry.hurried, wake: hurry.wake });
        return stopping;
      },
    };
  } else {
    const cluster = await startCluster({ config, log, workers, drainSeconds, entry: opts.entry });
    // The process must not die with worker threads running (that aborts every call at once):
    // a bug here ends the calls cleanly first.
    process.on('uncaughtException', (e) => {
      log.fatal({ err: e?.stack ?? String(e) }, 'uncaught error in the main thread; ending all calls');
      cluster.hurry();
      void cluster.drain(0).then((r) => (r.stuckWorkers ? process.kill(process.pid, 'SIGKILL') : process.exit(1)));
    });
    let stopping: Promise<DrainReport> | undefined;
    running = {
      port: cluster.port,
      workers,
      scrape: () => cluster.scrape(),
      stop() {
        if (stopping) { cluster.hurry(); return stopping; }
        stopping = cluster.drain(drainSeconds);
        return stopping;
      },
    };
  }

  if (opts.signals !== false) {
    const exit = opts.exit ?? ((code: number) => process.exit(code));
    let first = true;
    const onSignal = (signal: NodeJS.Signals) => {
      if (!first) {
        log.warn({ signal }, 'second signal: ending remaining calls now');
        void running.stop();
        return;
      }
      first = false;
      log.info({ signal, drainSeconds }, 'draining: not ready, no new calls; active calls continue');
      running.stop().then(
        async (report) => {
          await opts.onStopped?.();
          if (report.stuckWorkers) {
            // Exiting normally with a uWS thread still running aborts with a core dump; a
            // worker that could not close its sockets leaves only this.
            log.fatal(report, 'drained, but worker threads did not exit: killing the process');
            process.kill(process.pid, 'SIGKILL');
            return;
          }
          log.info(report, 'drained; exiting');
          exit(0);
        },
        (e: Error) => {
          log.error({ err: e.stack }, 'drain failed');
          exit(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  return running;
}

async function inProcessBridge(): Promise<StartBridgeFn> {
  const { startBridge } = await import('./server.js');
  return (config, log, deps) => startBridge(config, log, deps as Parameters<typeof startBridge>[2] & typeof deps);
}
