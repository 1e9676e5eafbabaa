import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runServer, startCluster, type Cluster } from '../src/cluster.js';
import { loadConfig, type Config } from '../src/config.js';
import { createLimitsState } from '../src/limits.js';
import { createLogger } from '../src/log.js';
import { liveness, readiness } from '../src/workers/http.js';
import { createHealthState, markUnhealthy, Ops } from '../src/workers/ops.js';
import { fakeStartBridge, type FakeFlags } from './fixtures/cluster/fake-bridge.js';
import { sampleValue } from './fixtures/cluster/prom-text.js';

const FAKE_WORKER = new URL('./fixtures/cluster/fake-worker.ts', import.meta.url);
const log = createLogger('silent');

function config(extra: Record<string, unknown> = {}, fake: FakeFlags = {}): Config {
  return { ...loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' }), ...extra, fake } as Config;
}

/** One HTTP request on a fresh connection (so the kernel may pick any worker). */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' }, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const sockets: WebSocket[] = [];
afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate();
});

function openCall(port: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/media-stream`);
    sockets.push(ws);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => {
        req.destroy(); // the refused request's connection is ours to close
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body }));
      });
    });
    ws.once('error', reject);
  });
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (m) => resolve(m.toString()));
    ws.send(text);
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve(-1);
    else ws.once('close', (code) => resolve(code));
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('probes', () => {
  const made: Ops[] = [];
  afterAll(() => { for (const o of made) o.stop(); });
  const ops = (o: ConstructorParameters<typeof Ops>[0]) => {
    const x = new Ops(o);
    made.push(x);
    return x;
  };

  it('readiness fails while draining and at capacity; liveness does not', () => {
    const o = ops({ limits: { maxCalls: 1 } });
    expect(readiness(o).status).toBe('200 OK');
    o.limits.reserveCall();
    expect(readiness(o)).toEqual({ status: '503 Service Unavailable', body: 'at capacity (MAX_CALLS=1)\n' });
    o.limits.releaseCall();
    o.startDraining();
    expect(readiness(o).body).toBe('draining\n');
    expect(liveness(o).status).toBe('200 OK');
  });

  it('liveness fails in every thread once one worker is marked stuck', () => {
    const healthState = createHealthState();
    const limitsState = createLimitsState();
    const a = ops({ healthState, limitsState, worker: 0 });
    const b = ops({ healthState, limitsState, worker: 1 });
    expect(liveness(a).status).toBe('200 OK');
    markUnhealthy(healthState, 1);
    markUnhealthy(healthState, 0); // the first one found stays reported
    expect(liveness(a)).toEqual({ status: '503 Service Unavailable', body: 'worker thread 1 stopped answering\n' });
    expect(liveness(b).status).toBe('503 Service Unavailable');
  });
});

describe('cluster: two workers on one port', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ config: config({ maxCalls: 2 }), log, workers: 2, entry: FAKE_WORKER, drainSeconds: 30 });
  });
  afterAll(async () => {
    await cluster?.drain(0);
  });

  it('starts every worker on the same port; each answers the probes', async () => {
    expect(cluster.port).toBeGreaterThan(0);
    for (let i = 0; i < 6; i++) {
      expect(await get(cluster.port, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
      expect((await get(cluster.port, '/readyz')).status).toBe(200);
    }
    // Aggregated /metrics (served by whichever worker, assembled by the main thread) holds
    // every worker's per-thread series.
    const text = (await get(cluster.port, '/metrics')).body;
    expect(sampleValue(text, 'voicebridge_workers')).toBe(2);
    expect(sampleValue(text, 'voicebridge_eventloop_lag_max_seconds', { thread: '0' })).toBeTypeOf('number');
    expect(sampleValue(text, 'voicebridge_eventloop_lag_max_seconds', { thread: '1' })).toBeTypeOf('number');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('counts calls of every worker, and enforces MAX_CALLS across workers', async () => {
    const a = await openCall(cluster.port);
    const b = await openCall(cluster.port);
    expect(await echo(a, 'one')).toBe('one');
    expect(await echo(b, 'two')).toBe('two');
    expect(await echo(b, 'three')).toBe('three');
    const err = await openCall(cluster.port).then(() => undefined, (e: { status: number; body: string }) => e);
    expect(err?.status).toBe(503);
    expect(err?.body).toContain('MAX_CALLS=2');
    expect(await get(cluster.port, '/readyz')).toEqual({ status: 503, body: 'at capacity (MAX_CALLS=2)\n' });
    let text = await cluster.scrape();
    expect(sampleValue(text, 'voicebridge_active_calls')).toBe(2);
    expect(sampleValue(text, 'voicebridge_frames_in_total')).toBe(3);
    expect(sampleValue(text, 'voicebridge_upgrades_rejected_total', { reason: 'capacity' })).toBe(1);
    a.close();
    await until('the hangup is counted', async () =>
      sampleValue(await cluster.scrape(), 'voicebridge_calls_total', { outcome: 'hangup' }) === 1);
    text = await cluster.scrape();
    expect(sampleValue(text, 'voicebridge_active_calls')).toBe(1);
    expect(sampleValue(text, 'voicebridge_frames_in_total')).toBe(3);
    b.close();
    await until('no call left', async () => (await cluster.activeCalls()) === 0);
  });

  it('drains: not ready and no new calls on every worker, active calls go on, exits when idle', async () => {
    const a = await openCall(cluster.port);
    const b = await openCall(cluster.port);
    const drained = cluster.drain(30);
    await until('readiness fails', async () => (await get(cluster.port, '/readyz')).status === 503);
    for (let i = 0; i < 6; i++) expect(await get(cluster.port, '/readyz')).toEqual({ status: 503, body: 'draining\n' });
    expect((await get(cluster.port, '/healthz')).status).toBe(200);
    const err = await openCall(cluster.port).then(() => undefined, (e: { status: number; body: string }) => e);
    expect(err?.status).toBe(503);
    expect(err?.body).toContain('draining');
    expect(sampleValue(await cluster.scrape(), 'voicebridge_draining')).toBe(1);
    // The calls in progress are untouched.
    expect(await echo(a, 'still here')).toBe('still here');
    expect(await echo(b, 'me too')).toBe('me too');
    a.close();
    b.close();
    const report = await drained;
    expect(report).toMatchObject({ activeAtStart: 2, activeAtClose: 0, ended: 'idle', stuckWorkers: 0 });
    await expect(get(cluster.port, '/healthz')).rejects.toThrow();
  });
});

describe('cluster: failures', () => {
  it('rejects at start when a worker cannot start its bridge', async () => {
    await expect(startCluster({ config: config({}, { fail: true }), log, workers: 2, entry: FAKE_WORKER }))
      .rejects.toThrow('fake bridge refused to start');
  });

  it('replaces a worker that hit an uncaught error, flags a stuck one, and ends calls at the drain deadline', async () => {
    const cluster = await startCluster({
      config: config(), log, workers: 1, entry: FAKE_WORKER, heartbeatMs: 50, heartbeatTimeoutMs: 300,
    });
    try {
      // An uncaught error ends that worker's calls and the thread (not the process): replaced.
      const victim = await openCall(cluster.port);
      const victimClosed = closed(victim);
      await get(cluster.port, '/crash').catch(() => undefined);
      expect(await victimClosed).toBe(1001);
      await until('the worker is replaced', async () => cluster.restarts === 1 && (await get(cluster.port, '/readyz')).status === 200);
      expect(sampleValue(await cluster.scrape(), 'voicebridge_worker_restarts_total')).toBe(1);

      // A worker that stops answering cannot be stopped without aborting the process: liveness fails.
      await get(cluster.port, '/hang?ms=1000').catch(() => undefined);
      await until('liveness fails', async () => {
        const r = await get(cluster.port, '/healthz');
        return r.status === 503 && r.body === 'worker thread 0 stopped answering\n';
      });

      // Drain deadline: a call still up is ended through the shutdown path (close 1001).
      const late = await openCall(cluster.port);
      expect(await echo(late, 'hello')).toBe('hello');
      const lateClosed = closed(late);
      const report = await cluster.drain(0.3);
      expect(report).toMatchObject({ activeAtStart: 1, activeAtClose: 1, ended: 'deadline', stuckWorkers: 0 });
      expect(await lateClosed).toBe(1001);
    } finally {
      await cluster.drain(0);
    }
  });
});

describe('runServer', () => {
  it('in-process (WORKERS=0): drains on SIGTERM and exits 0 once the last call ends', async () => {
    const before = new Set(process.listeners('SIGTERM'));
    const beforeInt = new Set(process.listeners('SIGINT'));
    let exited: (code: number) => void = () => {};
    const exitCode = new Promise<number>((r) => { exited = r; });
    const server = await runServer(config(), log, { workers: 0, drainSeconds: 30, startBridge: fakeStartBridge, exit: (c) => exited(c) });
    try {
      expect(server.workers).toBe(0);
      const call = await openCall(server.port);
      process.kill(process.pid, 'SIGTERM');
      await until('readiness fails', async () => (await get(server.port, '/readyz')).status === 503);
      expect(await echo(call, 'hi')).toBe('hi');
      expect(sampleValue(await server.scrape(), 'voicebridge_active_calls')).toBe(1);
      call.close();
      expect(await exitCode).toBe(0);
    } finally {
      for (const l of process.listeners('SIGTERM')) if (!before.has(l)) process.off('SIGTERM', l);
      for (const l of process.listeners('SIGINT')) if (!beforeInt.has(l)) process.off('SIGINT', l);
    }
  });

  it('a second stop cuts the drain short', async () => {
    const server = await runServer(config(), log, { workers: 0, drainSeconds: 60, startBridge: fakeStartBridge, signals: false });
    const call = await openCall(server.port);
    const callClosed = closed(call);
    const first = server.stop();
    await until('readiness fails', async () => (await get(server.port, '/readyz')).status === 503);
    const second = server.stop();
    const report = await first;
    expect(await second).toBe(report);
    expect(report).toMatchObject({ activeAtStart: 1, activeAtClose: 1, ended: 'hurried' });
    expect(await callClosed).toBe(1001);
  });
});
