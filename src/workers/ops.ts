// The operational surface one bridge thread needs: metrics, admission limits, the draining flag
// and how /metrics is answered. server.ts receives it as `deps.ops`; the same object serves the
// in-process mode (WORKERS=0) and each worker thread.
import { Limits, type LimitsOptions } from '../limits.js';
import { METRICS_CONTENT_TYPE, PromMetrics, type BridgeMetrics, type MetricsJson } from '../metrics.js';

/**
 * Process health shared by every thread: the main thread records a worker that stopped answering
 * (it cannot be stopped safely: a uWS thread ending with open sockets aborts the process), and
 * every worker's /healthz then fails so the orchestrator restarts the process.
 */
export function createHealthState(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

export function markUnhealthy(state: SharedArrayBuffer, worker: number): void {
  Atomics.compareExchange(new Int32Array(state), 0, 0, worker + 1);
}

/** The first worker found unresponsive, or -1. */
export function unhealthyWorker(state: SharedArrayBuffer | undefined): number {
  return state ? Atomics.load(new Int32Array(state), 0) - 1 : -1;
}

export interface BridgeOps {
  readonly metrics: BridgeMetrics;
  readonly limits: Limits;
  /** True once draining started: /readyz fails and new calls are refused. */
  readonly draining: boolean;
  /** Stops accepting new calls. Idempotent. Active calls are untouched. */
  startDraining(): void;
  /** The text for GET /metrics: the whole process (every worker) in cluster mode. */
  scrape(): Promise<string>;
  readonly metricsContentType: string;
  /** This thread's metrics as JSON (what a worker posts to the main thread). */
  metricsJson(): Promise<MetricsJson>;
  /** -1 when healthy; else the index of a worker thread that stopped answering. */
  unhealthyWorker(): number;
}

export interface OpsOptions {
  limits?: Partial<LimitsOptions>;
  /** Label of this thread's per-thread series. Default 'main'. */
  thread?: string;
  /** Limits shared by every worker (createLimitsState) and this worker's index. */
  limitsState?: SharedArrayBuffer;
  worker?: number;
  /** createHealthState(), shared by every worker (cluster mode). */
  healthState?: SharedArrayBuffer;
  clock?: () => number;
  /** Cluster mode: fetches the aggregated text from the main thread. Default: this thread's registry. */
  clusterScrape?: () => Promise<string>;
  /** prom-client default (process) metrics in this registry. Default: true unless clusterScrape is set. */
  defaultMetrics?: boolean;
  /** Time 1 DSP call in this many (power of two). Default 64. */
  dspSampleEvery?: number;
}

export class Ops implements BridgeOps {
  readonly metrics: PromMetrics;
  readonly limits: Limits;
  readonly metricsContentType = METRICS_CONTENT_TYPE;
  private drainingFlag = false;
  private readonly clusterScrape: (() => Promise<string>) | undefined;
  private readonly healthState: SharedArrayBuffer | undefined;

  constructor(opts: OpsOptions = {}) {
    this.limits = new Limits(opts.limits, { state: opts.limitsState, worker: opts.worker, clock: opts.clock });
    this.clusterScrape = opts.clusterScrape;
    this.healthState = opts.healthState;
    this.metrics = new PromMetrics({
      thread: opts.thread ?? 'main',
      defaultMetrics: opts.defaultMetrics ?? !opts.clusterScrape,
      dspSampleEvery: opts.dspSampleEvery,
    });
  }

  get draining(): boolean {
    return this.drainingFlag;
  }

  startDraining(): void {
    if (this.drainingFlag) return;
    this.drainingFlag = true;
    this.metrics.setDraining(true);
  }

  scrape(): Promise<string> {
    return this.clusterScrape ? this.clusterScrape() : this.metrics.text();
  }

  metricsJson(): Promise<MetricsJson> {
    return this.metrics.metricsJson();
  }

  unhealthyWorker(): number {
    return unhealthyWorker(this.healthState);
  }

  /** Releases timers/monitors (tests). */
  stop(): void {
    this.metrics.stop();
  }
}

const LIMIT_KEYS: (keyof LimitsOptions)[] = [
  'maxCalls', 'upgradeRatePerMin', 'upgradeBurst', 'maxMessageBytes', 'wsIdleTimeoutS', 'wsMaxBackpressureBytes', 'clientIpHeader',
];

/** The limit fields present on a config object (Config once it carries them); the rest default. */
export function limitsFromConfig(config: object): Partial<LimitsOptions> {
  const src = config as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of LIMIT_KEYS) if (src[k] !== undefined) out[k] = src[k];
  return out as Partial<LimitsOptions>;
}

/** Ops for one thread from a Config (in-process mode: `createOps(config)`). */
export function createOps(config: object, opts: Omit<OpsOptions, 'limits'> = {}): Ops {
  return new Ops({ ...opts, limits: limitsFromConfig(config) });
}
