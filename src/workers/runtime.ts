// The worker-thread side: start one bridge (its own uWS app on the shared port, its own WASM
// instance) and obey the main thread's commands. `startBridge` is injected so tests can run a
// fake bridge; src/workers/entry.ts passes the real one from server.ts.
//
// A uWS worker thread must end only by closing every socket and letting its event loop run dry:
// ending it any other way (worker.terminate(), an uncaught exception, process.exit, the main
// thread exiting first) aborts the whole process with "uv_loop_close() while having open
// handles". Hence: an uncaught error here ends this thread's calls and closes its sockets, and
// the main thread replaces the thread once it has exited.
import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createLogger } from '../log.js';
import type { MetricsJson } from '../metrics.js';
import { createOps, type BridgeOps } from './ops.js';
import type { BridgeWorkerData, FromWorker, ToWorker } from './protocol.js';

/** What startBridge returns (server.ts BridgeServer): enough to build a BridgeControl. */
export interface BridgeServerLike {
  readonly port: number;
  readonly calls: { readonly size: number };
  /** Ends every call with 'shutdown' (Call.end path) and closes the listen socket. */
  close(): void;
  /**
   * Closes every socket left at once (uWS `app.close()`: idle keep-alive connections, close
   * handshakes in flight), so the thread can exit. Called shortly after close().
   */
  forceClose?(): void;
}

export type StartBridgeFn = (config: Config, log: Logger, deps: { ops: BridgeOps }) => Promise<BridgeServerLike>;

/** How the coordinator drives one bridge (one thread). */
export interface BridgeControl {
  readonly port: number;
  /** Stops accepting (/readyz 503, upgrades 503 "draining"); returns the calls still active. */
  drain(): number;
  activeCalls(): number;
  /** This thread's metrics registry as JSON, for aggregation. */
  metricsJson(): Promise<MetricsJson>;
  /** Ends the remaining calls with 'shutdown', stops listening, then closes what is left. */
  close(): void;
}

/** Bound on the main thread's answer to a /metrics request. */
export const SCRAPE_TIMEOUT_MS = 5000;

/** Time between ending the calls (close frames sent) and closing whatever sockets remain. */
export const FORCE_CLOSE_MS = 1000;

export function bridgeControl(server: BridgeServerLike, ops: BridgeOps, forceCloseMs = FORCE_CLOSE_MS): BridgeControl {
  let closed = false;
  return {
    port: server.port,
    drain() {
      ops.startDraining();
      return server.calls.size;
    },
    activeCalls: () => server.calls.size,
    metricsJson: () => ops.metricsJson(),
    close() {
      if (closed) return;
      closed = true;
      ops.startDraining();
      server.close();
      if (server.forceClose) {
        // Unref'd: it never holds the thread up, and still fires while sockets keep it alive.
        setTimeout(() => server.forceClose!(), forceCloseMs).unref();
      }
    },
  };
}

/** Runs in a worker thread: starts the bridge, reports `ready`, then serves the main thread. */
export async function runWorker(startBridge: StartBridgeFn): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('runWorker must run in a worker thread');
  const data = workerData as BridgeWorkerData;
  const post = (m: FromWorker) => port.postMessage(m);
  const log = createLogger(data.config.logLevel).child({ worker: data.index });

  let scrapeSeq = 0;
  const scrapes = new Map<number, { resolve: (s: string) => void; reject: (e: Error) => void }>();
  const clusterScrape = () =>
    new Promise<string>((resolve, reject) => {
      const id = ++scrapeSeq;
      const timer = setTimeout(() => {
        scrapes.delete(id);
        reject(new Error('the main thread did not answer'));
      }, SCRAPE_TIMEOUT_MS);
      scrapes.set(id, {
        resolve: (s) => { clearTimeout(timer); resolve(s); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      post({ t: 'scrape', id });
    });

  const ops = createOps(data.config, {
    thread: String(data.index),
    worker: data.index,
    limitsState: data.limitsState,
    healthState: data.healthState,
    clusterScrape,
  });

  let control: BridgeControl | undefined;
  let closeRequested = false;
  let shuttingDown = false;

  const shutdown = () => {
    if (shuttingDown) return;
    shuttingDown = true;
    control?.close();
    ops.stop();
    for (const p of scrapes.values()) p.reject(new Error('worker closing'));
    scrapes.clear();
    // Nothing else keeps the thread: it exits once its sockets are gone.
    port.unref();
  };

  process.on('uncaughtException', (e) => {
    log.fatal({ err: e?.stack ?? String(e) }, 'uncaught error in worker thread; ending its calls and restarting it');
    post({ t: 'fatal', error: e?.message ?? String(e) });
    shutdown();
  });

  port.on('message', (m: ToWorker) => {
    if (m.t === 'close') {
      closeRequested = true;
      if (control) {
        shutdown();
        post({ t: 'closed' });
      }
      return;
    }
    if (!control) return;
    switch (m.t) {
      case 'drain':
        post({ t: 'draining', active: control.drain() });
        return;
      case 'status':
        post({ t: 'status', id: m.id, active: control.activeCalls() });
        return;
      case 'ping':
        post({ t: 'pong', id: m.id });
        return;
      case 'metrics':
        control.metricsJson().then(
          (json) => post({ t: 'metrics', id: m.id, json }),
          (e: Error) => log.error({ err: e.message }, 'metrics collection failed'),
        );
        return;
      case 'scraped': {
        const p = scrapes.get(m.id);
        scrapes.delete(m.id);
        if (p) m.error === undefined ? p.resolve(m.body ?? '') : p.reject(new Error(m.error));
        return;
      }
    }
  });

  try {
    const server = await startBridge({ ...data.config, port: data.port }, log, { ops });
    control = bridgeControl(server, ops);
  } catch (e) {
    post({ t: 'failed', error: (e as Error)?.message ?? String(e) });
    ops.stop();
    port.close();
    return;
  }
  post({ t: 'ready', port: control.port });
  if (closeRequested) {
    shutdown();
    post({ t: 'closed' });
  }
}
