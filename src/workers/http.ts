// uWS glue for the operational routes and the upgrade gate: what server.ts mounts/calls.
//   GET /healthz  200 while this thread answers and no worker thread is stuck (liveness).
//   GET /readyz   200 when accepting calls; 503 while draining or at MAX_CALLS (readiness).
//   GET /metrics  Prometheus text (every worker aggregated in cluster mode).
// These are for the pod network (probes, Prometheus); expose only Twilio's paths publicly.
import type uWS from 'uWebSockets.js';
import { clientAddress, drainingVerdict, type Verdict } from '../limits.js';
import type { BridgeOps } from './ops.js';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';
export const METRICS_PATH = '/metrics';

export interface Probe {
  status: string;
  body: string;
}

export function liveness(ops: Pick<BridgeOps, 'unhealthyWorker'>): Probe {
  const stuck = ops.unhealthyWorker();
  if (stuck >= 0) return { status: '503 Service Unavailable', body: `worker thread ${stuck} stopped answering\n` };
  return { status: '200 OK', body: 'ok\n' };
}

export function readiness(ops: Pick<BridgeOps, 'draining' | 'limits'>): Probe {
  if (ops.draining) return { status: '503 Service Unavailable', body: 'draining\n' };
  if (ops.limits.atCapacity()) {
    return { status: '503 Service Unavailable', body: `at capacity (MAX_CALLS=${ops.limits.options.maxCalls})\n` };
  }
  return { status: '200 OK', body: 'ready\n' };
}

function answer(res: uWS.HttpResponse, p: Probe): void {
  res.writeStatus(p.status).writeHeader('Content-Type', 'text/plain').writeHeader('Cache-Control', 'no-store').end(p.body);
}

/** Mounts /healthz, /readyz and /metrics on a uWS app. */
export function mountOpsRoutes(app: uWS.TemplatedApp, ops: BridgeOps): void {
  app.get(HEALTH_PATH, (res) => answer(res, liveness(ops)));
  app.get(READY_PATH, (res) => answer(res, readiness(ops)));
  app.get(METRICS_PATH, (res) => {
    let aborted = false;
    res.onAborted(() => { aborted = true; });
    ops.scrape().then(
      (body) => {
        if (!aborted) res.cork(() => res.writeHeader('Content-Type', ops.metricsContentType).end(body));
      },
      (e: unknown) => {
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end(`metrics unavailable: ${(e as Error).message}\n`));
      },
    );
  });
}

/** Answers a refused upgrade (status, Retry-After, reason text) and counts it. */
export function rejectUpgrade(res: uWS.HttpResponse, verdict: Verdict, ops: Pick<BridgeOps, 'metrics'>): void {
  if (verdict.ok) return;
  ops.metrics.upgradeRejected(verdict.reason);
  res.writeStatus(verdict.status)
    .writeHeader('Retry-After', String(verdict.retryAfterS))
    .writeHeader('Content-Type', 'text/plain')
    .end(`${verdict.message}\n`);
}

/** The client address of an upgrade request (socket address, or the trusted proxy's header). */
export function requestAddress(res: uWS.HttpResponse, req: uWS.HttpRequest, ops: Pick<BridgeOps, 'limits'>): string {
  const header = ops.limits.options.clientIpHeader;
  return clientAddress(Buffer.from(res.getRemoteAddressAsText()).toString(), header ? req.getHeader(header) : undefined);
}

/**
 * First check of an upgrade, before the signature check: draining, then the per-address rate.
 * On refusal it answers the request and returns false. Call it first in the upgrade handler
 * (it reads a header, which uWS only allows before any await).
 */
export function gateUpgrade(res: uWS.HttpResponse, req: uWS.HttpRequest, ops: BridgeOps): boolean {
  const verdict = ops.draining ? drainingVerdict() : ops.limits.admit(requestAddress(res, req, ops));
  if (verdict.ok) return true;
  rejectUpgrade(res, verdict, ops);
  return false;
}

/**
 * Last check before res.upgrade(): takes a call slot (MAX_CALLS, process-wide) or answers 503.
 * A true return must be paired with ops.limits.releaseCall() when that socket closes.
 */
export function reserveCallSlot(res: uWS.HttpResponse, ops: BridgeOps): boolean {
  const verdict = ops.draining ? drainingVerdict() : ops.limits.reserveCall();
  if (verdict.ok) return true;
  rejectUpgrade(res, verdict, ops);
  return false;
}
