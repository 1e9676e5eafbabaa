// Messages between the main thread (src/cluster.ts) and each bridge worker thread
// (src/workers/runtime.ts), over the worker's parentPort. Plain structured-clone data.
import type { Config } from '../config.js';
import type { MetricsJson } from '../metrics.js';

/** workerData of every bridge worker. */
export interface BridgeWorkerData {
  config: Config;
  /** 0..N-1, stable across restarts: the `thread` label and the call-slot owner. */
  index: number;
  /** The port to listen on (the first worker's port when config.port is 0). */
  port: number;
  /** createLimitsState(): call cap and upgrade rates shared by every worker. */
  limitsState: SharedArrayBuffer;
  /** createHealthState(): set by the main thread when a worker stops answering (/healthz fails). */
  healthState: SharedArrayBuffer;
}

export type ToWorker =
  /** Stop accepting new calls; answer `draining` with the calls still active. */
  | { t: 'drain' }
  | { t: 'status'; id: number }
  | { t: 'metrics'; id: number }
  /** Answer to the worker's `scrape`: the whole process's metrics text. */
  | { t: 'scraped'; id: number; body?: string; error?: string }
  | { t: 'ping'; id: number }
  /** End every call ('shutdown'), stop listening, let the thread exit. */
  | { t: 'close' };

export type FromWorker =
  | { t: 'ready'; port: number }
  | { t: 'failed'; error: string }
  /** An uncaught error: the worker ends its calls, closes its sockets and exits (to be replaced). */
  | { t: 'fatal'; error: string }
  | { t: 'draining'; active: number }
  | { t: 'status'; id: number; active: number }
  | { t: 'metrics'; id: number; json: MetricsJson }
  /** A worker's /metrics asks for the aggregated text. */
  | { t: 'scrape'; id: number }
  | { t: 'pong'; id: number }
  | { t: 'closed' };
