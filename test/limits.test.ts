import { describe, expect, it } from 'vitest';
import {
  BUCKETS,
  clientAddress,
  createLimitsState,
  DEFAULT_LIMITS,
  Limits,
  LimitsError,
  reclaimWorker,
  resolveLimits,
  sharedActiveCalls,
  type Verdict,
} from '../src/limits.js';

/** A manual clock (ms). */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

const rejected = (v: Verdict) => (v.ok ? undefined : v);

describe('per-address upgrade rate (token bucket)', () => {
  it('allows a burst, then refuses with 429 and a Retry-After until a token refills', () => {
    const c = clock();
    const l = new Limits({ upgradeRatePerMin: 60, upgradeBurst: 3 }, { clock: c.now });
    for (let i = 0; i < 3; i++) expect(l.admit('203.0.113.5').ok).toBe(true);
    const r = rejected(l.admit('203.0.113.5'));
    expect(r?.reason).toBe('rate_limited');
    expect(r?.status).toBe('429 Too Many Requests');
    expect(r?.retryAfterS).toBe(1); // 60/min: one token a second
    expect(r?.message).toContain('UPGRADE_RATE_PER_MIN=60');
    c.advance(999);
    expect(l.admit('203.0.113.5').ok).toBe(false);
    c.advance(1);
    expect(l.admit('203.0.113.5').ok).toBe(true);
    expect(l.admit('203.0.113.5').ok).toBe(false);
  });

  it('a refused attempt does not use up a token', () => {
    const c = clock();
    const l = new Limits({ upgradeRatePerMin: 60, upgradeBurst: 1 }, { clock: c.now });
    expect(l.admit('a').ok).toBe(true);
    for (let i = 0; i < 50; i++) expect(l.admit('a').ok).toBe(false);
    c.advance(1000);
    expect(l.admit('a').ok).toBe(true);
  });

  it('holds the configured sustained rate over ten minutes of hammering', () => {
    const c = clock();
    const l = new Limits({ upgradeRatePerMin: 120, upgradeBurst: 10 }, { clock: c.now });
    let accepted = 0;
    for (let t = 0; t < 600_000; t += 50) {
      if (l.admit('198.51.100.7').ok) accepted++;
      c.advance(50);
    }
    // burst + 2 per second for 600 s (the last refill may land just after the loop)
    expect(accepted).toBeGreaterThanOrEqual(10 + 1199);
    expect(accepted).toBeLessThanOrEqual(10 + 1200);
  });

  it('retry-after grows with the deficit at low rates', () => {
    const c = clock();
    const l = new Limits({ upgradeRatePerMin: 6, upgradeBurst: 1 }, { clock: c.now });
    l.admit('x');
    expect(rejected(l.admit('x'))?.retryAfterS).toBe(10);
    c.advance(4000);
    expect(rejected(l.admit('x'))?.retryAfterS).toBe(6);
  });

  it('keeps addresses apart', () => {
    const c = clock();
    const l = new Limits({ upgradeRatePerMin: 60, upgradeBurst: 2 }, { state: createLimitsState(12345), clock: c.now });
    expect(l.admit('10.0.0.1').ok).toBe(true);
    expect(l.admit('10.0.0.1').ok).toBe(true);
    expect(l.admit('10.0.0.1').ok).toBe(false);
    expect(l.admit('10.0.0.2').ok).toBe(true);
    expect(l.admit('2001:db8::1').ok).toBe(true);
  });

  it('is off at UPGRADE_RATE_PER_MIN=0', () => {
    const l = new Limits({ upgradeRatePerMin: 0, upgradeBurst: 1 }, { clock: () => 0 });
    for (let i = 0; i < 1000; i++) expect(l.admit('a').ok).toBe(true);
  });

  it('starts with a full bucket even when the clock starts at 0', () => {
    const l = new Limits({ upgradeRatePerMin: 60, upgradeBurst: 5 }, { clock: () => 0 });
    for (let i = 0; i < 5; i++) expect(l.admit('a').ok).toBe(true);
    expect(l.admit('a').ok).toBe(false);
  });

  it('is shared by every worker holding the same state (one address spread over threads)', () => {
    const c = clock();
    const state = createLimitsState();
    const w0 = new Limits({ upgradeRatePerMin: 60, upgradeBurst: 4 }, { state, worker: 0, clock: c.now });
    const w1 = new Limits({ upgradeRatePerMin: 60, upgradeBurst: 4 }, { state, worker: 1, clock: c.now });
    expect(w0.admit('a').ok).toBe(true);
    expect(w1.admit('a').ok).toBe(true);
    expect(w0.admit('a').ok).toBe(true);
    expect(w1.admit('a').ok).toBe(true);
    expect(w0.admit('a').ok).toBe(false);
    expect(w1.admit('a').ok).toBe(false);
  });

  it('uses bounded memory whatever the number of addresses', () => {
    const state = createLimitsState();
    const l = new Limits({ upgradeRatePerMin: 60, upgradeBurst: 1 }, { state, clock: () => 0 });
    const before = state.byteLength;
    let refused = 0;
    for (let i = 0; i < 4 * BUCKETS; i++) if (!l.admit(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`).ok) refused++;
    expect(state.byteLength).toBe(before);
    // More addresses than slots: some share a bucket (and are limited harder), none unlimited.
    expect(refused).toBeGreaterThan(0);
  });
});

describe('concurrent call cap (MAX_CALLS)', () => {
  it('refuses with 503 and a reason naming the limit once the process is full', () => {
    const l = new Limits({ maxCalls: 2 });
    expect(l.reserveCall().ok).toBe(true);
    expect(l.reserveCall().ok).toBe(true);
    const r = rejected(l.reserveCall());
    expect(r?.reason).toBe('capacity');
    expect(r?.status).toBe('503 Service Unavailable');
    expect(r?.message).toContain('MAX_CALLS=2');
    expect(l.atCapacity()).toBe(true);
    l.releaseCall();
    expect(l.atCapacity()).toBe(false);
    expect(l.reserveCall().ok).toBe(true);
  });

  it('counts calls across workers sharing the state', () => {
    const state = createLimitsState();
    const w0 = new Limits({ maxCalls: 3 }, { state, worker: 0 });
    const w1 = new Limits({ maxCalls: 3 }, { state, worker: 1 });
    expect(w0.reserveCall().ok).toBe(true);
    expect(w0.reserveCall().ok).toBe(true);
    expect(w1.reserveCall().ok).toBe(true);
    expect(w1.reserveCall().ok).toBe(false);
    expect(w0.reserveCall().ok).toBe(false);
    expect(sharedActiveCalls(state)).toBe(3);
    w1.releaseCall();
    expect(w0.reserveCall().ok).toBe(true);
  });

  it('gives back the slots of a worker that died', () => {
    const state = createLimitsState();
    const w0 = new Limits({ maxCalls: 3 }, { state, worker: 0 });
    const w1 = new Limits({ maxCalls: 3 }, { state, worker: 1 });
    w0.reserveCall();
    w0.reserveCall();
    w1.reserveCall();
    expect(reclaimWorker(state, 0)).toBe(2);
    expect(sharedActiveCalls(state)).toBe(1);
    const w0b = new Limits({ maxCalls: 3 }, { state, worker: 0 });
    expect(w0b.reserveCall().ok).toBe(true);
    expect(w0b.reserveCall().ok).toBe(true);
    expect(w0b.reserveCall().ok).toBe(false);
  });

  it('ignores releases it does not hold', () => {
    const state = createLimitsState();
    const w0 = new Limits({ maxCalls: 2 }, { state, worker: 0 });
    const w1 = new Limits({ maxCalls: 2 }, { state, worker: 1 });
    w1.reserveCall();
    w0.releaseCall();
    w0.releaseCall();
    expect(sharedActiveCalls(state)).toBe(1);
  });

  it('has no cap at MAX_CALLS=0', () => {
    const l = new Limits({ maxCalls: 0 });
    for (let i = 0; i < 10_000; i++) expect(l.reserveCall().ok).toBe(true);
    expect(l.atCapacity()).toBe(false);
  });
});

describe('options', () => {
  it('documents its defaults', () => {
    const o = resolveLimits({});
    expect(o).toEqual({ ...DEFAULT_LIMITS });
    expect(o.maxCalls).toBe(200);
    expect(o.upgradeRatePerMin).toBe(120);
    expect(o.upgradeBurst).toBe(30);
    expect(o.wsIdleTimeoutS).toBe(20);
    expect(o.maxMessageBytes).toBe(1 << 20);
  });

  it('maps to the uWS WebSocket behaviour', () => {
    const l = new Limits({ maxMessageBytes: 65536, wsIdleTimeoutS: 32, wsMaxBackpressureBytes: 4096 });
    expect(l.wsOptions()).toEqual({ maxPayloadLength: 65536, idleTimeout: 32, maxBackpressure: 4096, sendPingsAutomatically: true });
  });

  it.each([
    [{ wsIdleTimeoutS: 4 }, 'WS_IDLE_TIMEOUT_S'],
    [{ wsIdleTimeoutS: 1000 }, 'WS_IDLE_TIMEOUT_S'],
    [{ maxCalls: -1 }, 'MAX_CALLS'],
    [{ upgradeBurst: 0 }, 'UPGRADE_BURST'],
    [{ upgradeRatePerMin: 1.5 }, 'UPGRADE_RATE_PER_MIN'],
    [{ maxMessageBytes: 10 }, 'MAX_MESSAGE_BYTES'],
    [{ clientIpHeader: 'x forwarded' }, 'CLIENT_IP_HEADER'],
  ])('rejects %o naming %s', (partial, name) => {
    expect(() => resolveLimits(partial)).toThrow(LimitsError);
    expect(() => resolveLimits(partial)).toThrow(name);
  });

  it('accepts an idle timeout of 0 (off) and normalises the header name', () => {
    expect(resolveLimits({ wsIdleTimeoutS: 0 }).wsIdleTimeoutS).toBe(0);
    expect(resolveLimits({ clientIpHeader: ' X-Forwarded-For ' }).clientIpHeader).toBe('x-forwarded-for');
  });

  it('refuses a state that is not its own', () => {
    expect(() => new Limits({}, { state: new SharedArrayBuffer(64) })).toThrow(LimitsError);
  });
});

describe('clientAddress', () => {
  it('uses the last entry of the trusted proxy header (the one the proxy appended)', () => {
    expect(clientAddress('10.1.2.3', '1.1.1.1, 203.0.113.9')).toBe('203.0.113.9');
    expect(clientAddress('10.1.2.3', ' 203.0.113.9 ')).toBe('203.0.113.9');
  });

  it('falls back to the socket address', () => {
    expect(clientAddress('10.1.2.3', undefined)).toBe('10.1.2.3');
    expect(clientAddress('10.1.2.3', '')).toBe('10.1.2.3');
    expect(clientAddress('10.1.2.3', ' , ')).toBe('10.1.2.3');
  });
});
