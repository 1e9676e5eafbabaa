// Admission limits for the media-stream upgrade, and the per-socket uWS limits, with their
// documented defaults. Pure logic with an injected clock.
//
// The state lives in one SharedArrayBuffer so that, with worker threads, the call cap and the
// per-address rates hold for the whole process: the kernel (SO_REUSEPORT) spreads one address's
// connections over every thread, so per-thread limits would each be N times too loose.
//   - active calls: one process-wide counter taken with compare-and-swap, plus a count per worker
//     so a crashed worker's slots can be given back (`reclaimWorker`).
//   - per-address token buckets: a fixed table of BUCKETS slots indexed by a seeded hash of the
//     address (memory is bounded whatever the number of addresses; two addresses sharing a slot
//     share a bucket, i.e. are limited slightly harder). Each slot has a spinlock word.

export interface LimitsOptions {
  /** MAX_CALLS: concurrent calls in this process; further upgrades get 503. 0 = no cap. */
  maxCalls: number;
  /** UPGRADE_RATE_PER_MIN: sustained upgrade attempts per client address. 0 = no rate limit. */
  upgradeRatePerMin: number;
  /** UPGRADE_BURST: attempts one address may make at once before the rate applies. */
  upgradeBurst: number;
  /** MAX_MESSAGE_BYTES: largest WebSocket message accepted (uWS maxPayloadLength). */
  maxMessageBytes: number;
  /** WS_IDLE_TIMEOUT_S: close a stream silent this long (uWS idleTimeout; 0 or 8..960). */
  wsIdleTimeoutS: number;
  /** WS_MAX_BACKPRESSURE_BYTES: bytes queued to a slow Twilio socket before sends are dropped. */
  wsMaxBackpressureBytes: number;
  /** CLIENT_IP_HEADER: header carrying the client address set by a trusted proxy (last entry used). */
  clientIpHeader: string | undefined;
}

/**
 * Defaults. Twilio's media streams come from a small set of Twilio addresses, so the per-address
 * rate is a flood guard, not a per-caller limit: it must allow the call setup rate of a busy
 * deployment from one Twilio edge address. An unsigned upgrade is already refused by the
 * signature check before it reaches the model; this limit bounds the work floods cost.
 */
export const DEFAULT_LIMITS: Readonly<LimitsOptions> = Object.freeze({
  maxCalls: 200,
  upgradeRatePerMin: 120,
  upgradeBurst: 30,
  maxMessageBytes: 1 << 20,
  wsIdleTimeoutS: 20,
  wsMaxBackpressureBytes: 1 << 20,
  clientIpHeader: undefined,
});

/** The environment variables these options come from, with their defaults and meaning (for config.ts). */
export const LIMITS_ENV = [
  { env: 'MAX_CALLS', default: '200', doc: 'Concurrent calls per process (all worker threads); further stream upgrades get 503 "at capacity". 0: no cap.' },
  { env: 'UPGRADE_RATE_PER_MIN', default: '120', doc: 'Stream upgrade attempts per minute per client address (token bucket); over it: 429 with Retry-After. 0: off. Twilio connects from few addresses: size for the whole call setup rate.' },
  { env: 'UPGRADE_BURST', default: '30', doc: 'Upgrade attempts one address may make at once before UPGRADE_RATE_PER_MIN applies.' },
  { env: 'WS_IDLE_TIMEOUT_S', default: '20', doc: 'Close a media stream after this many seconds without a message (Twilio sends 50 a second). 0 or 8..960.' },
  { env: 'WS_MAX_BACKPRESSURE_BYTES', default: '1048576', doc: 'Bytes queued to a slow Twilio socket before further sends are dropped (and counted).' },
  { env: 'CLIENT_IP_HEADER', default: '(unset)', doc: 'Header a trusted proxy sets to the client address (e.g. x-forwarded-for; its last entry is used). Unset: the socket address.' },
] as const;

export class LimitsError extends Error {}

/** Fills defaults and checks ranges; throws LimitsError naming the variable. */
export function resolveLimits(partial: Partial<LimitsOptions> = {}): LimitsOptions {
  const o: LimitsOptions = { ...DEFAULT_LIMITS };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new LimitsError(`${name} must be an integer in ${min}..${max}, got ${v}`);
  };
  int('MAX_CALLS', o.maxCalls, 0, 1_000_000);
  int('UPGRADE_RATE_PER_MIN', o.upgradeRatePerMin, 0, 1_000_000);
  int('UPGRADE_BURST', o.upgradeBurst, 1, 1_000_000);
  int('MAX_MESSAGE_BYTES', o.maxMessageBytes, 1024, 64 << 20);
  int('WS_IDLE_TIMEOUT_S', o.wsIdleTimeoutS, 0, 960);
  if (o.wsIdleTimeoutS !== 0 && o.wsIdleTimeoutS < 8) {
    throw new LimitsError(`WS_IDLE_TIMEOUT_S must be 0 (off) or 8..960 (uWS), got ${o.wsIdleTimeoutS}`);
  }
  int('WS_MAX_BACKPRESSURE_BYTES', o.wsMaxBackpressureBytes, 1024, 1 << 30);
  if (o.clientIpHeader !== undefined) {
    const h = o.clientIpHeader.trim().toLowerCase();
    if (!/^[a-z0-9-]+$/.test(h)) throw new LimitsError(`CLIENT_IP_HEADER must be a header name, got "${o.clientIpHeader}"`);
    o.clientIpHeader = h;
  }
  return o;
}

/**
 * The client address for rate limiting. With a header set by a trusted proxy, its LAST entry is
 * the address that proxy saw (entries before it are whatever the client claimed); without one,
 * or if the header is absent/empty, the socket's remote address.
 */
export function clientAddress(remote: string, headerValue: string | undefined): string {
  if (headerValue) {
    const i = headerValue.lastIndexOf(',');
    const last = (i < 0 ? headerValue : headerValue.slice(i + 1)).trim();
    if (last) return last;
  }
  return remote;
}

export type RejectReason = 'draining' | 'capacity' | 'rate_limited';

export type Verdict =
  | { ok: true }
  | {
      ok: false;
      reason: RejectReason;
      /** HTTP status line for uWS writeStatus, e.g. "503 Service Unavailable". */
      status: string;
      /** Seconds for the Retry-After header. */
      retryAfterS: number;
      /** Plain-text body: says which limit and how to change it. */
      message: string;
    };

const OK: Verdict = Object.freeze({ ok: true });

export function drainingVerdict(): Verdict {
  return { ok: false, reason: 'draining', status: '503 Service Unavailable', retryAfterS: 5, message: 'server draining: not accepting new calls' };
}

// ---- shared state layout ----------------------------------------------------------------------
/** Worker indices 0..MAX_WORKERS-1 have their own active-call count. */
export const MAX_WORKERS = 256;
/** Token-bucket slots (power of two). 16384 * 20 bytes = 320 KiB. */
export const BUCKETS = 16384;
const I_MAGIC = 0;
const I_SEED = 1;
const I_ACTIVE = 2;
const I_WORKER = 8;
const I_LOCKS = I_WORKER + MAX_WORKERS;
const HEADER_I32 = I_LOCKS + BUCKETS;
/** Float64 area: per slot [deficit tokens, last refill ms]. */
const F64_OFFSET = Math.ceil((HEADER_I32 * 4) / 8) * 8;
const STATE_BYTES = F64_OFFSET + BUCKETS * 2 * 8;
const MAGIC = 0x766c6d31; // 'vlm1'
const SPIN_LIMIT = 100_000;

/** Zeroed shared state with a random hash seed. Pass it to every worker (workerData). */
export function createLimitsState(seed = (Math.random() * 0x7fffffff) | 0): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(STATE_BYTES);
  const i32 = new Int32Array(sab);
  i32[I_SEED] = seed;
  i32[I_MAGIC] = MAGIC;
  return sab;
}

/** Gives back the call slots a dead worker held; returns how many. Main thread, after a crash. */
export function reclaimWorker(state: SharedArrayBuffer, worker: number): number {
  const i32 = new Int32Array(state);
  const n = Atomics.exchange(i32, I_WORKER + worker, 0);
  if (n > 0) Atomics.sub(i32, I_ACTIVE, n);
  return n;
}

/** Process-wide active call slots held (every worker). */
export function sharedActiveCalls(state: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(state), I_ACTIVE);
}

function hashAddress(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

export interface LimitsContext {
  /** Shared state (createLimitsState); default: a private one (single thread). */
  state?: SharedArrayBuffer;
  /** This thread's worker index, 0..MAX_WORKERS-1. Default 0. */
  worker?: number;
  /** ms clock, consistent across threads. Default performance.timeOrigin + performance.now(). */
  clock?: () => number;
}

export class Limits {
  readonly options: LimitsOptions;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly worker: number;
  private readonly clock: () => number;
  private readonly seed: number;
  private readonly ratePerMs: number;
  /** Slots this instance holds (so a double release cannot go below zero). */
  private held = 0;

  constructor(options: Partial<LimitsOptions> = {}, ctx: LimitsContext = {}) {
    this.options = resolveLimits(options);
    const state = ctx.state ?? createLimitsState();
    if (state.byteLength !== STATE_BYTES || new Int32Array(state)[I_MAGIC] !== MAGIC) {
      throw new LimitsError('limits state is not from createLimitsState()');
    }
    this.i32 = new Int32Array(state);
    this.f64 = new Float64Array(state, F64_OFFSET, BUCKETS * 2);
    this.worker = ctx.worker ?? 0;
    if (!Number.isInteger(this.worker) || this.worker < 0 || this.worker >= MAX_WORKERS) {
      throw new LimitsError(`worker index must be 0..${MAX_WORKERS - 1}, got ${this.worker}`);
    }
    this.clock = ctx.clock ?? (() => performance.timeOrigin + performance.now());
    this.seed = this.i32[I_SEED];
    this.ratePerMs = this.options.upgradeRatePerMin / 60_000;
  }

  /** Per-address rate check for one upgrade attempt (takes a token when allowed). */
  admit(address: string): Verdict {
    if (this.options.upgradeRatePerMin === 0) return OK;
    const slot = hashAddress(address, this.seed) & (BUCKETS - 1);
    const lock = I_LOCKS + slot;
    let spins = 0;
    while (Atomics.compareExchange(this.i32, lock, 0, 1) !== 0) {
      // Held only for a few arithmetic operations by another thread; a lock that never frees
      // (a thread killed inside it) must not shut every caller out: fail open.
      if (++spins > SPIN_LIMIT) return OK;
    }
    try {
      const now = this.clock();
      const d = slot * 2;
      // `deficit` = burst - tokens, so zeroed memory is a full bucket.
      const elapsed = Math.max(0, now - this.f64[d + 1]);
      let deficit = Math.max(0, this.f64[d] - elapsed * this.ratePerMs);
      this.f64[d + 1] = now;
      if (deficit + 1 <= this.options.upgradeBurst) {
        this.f64[d] = deficit + 1;
        return OK;
      }
      this.f64[d] = deficit;
      const waitMs = (deficit + 1 - this.options.upgradeBurst) / this.ratePerMs;
      return {
        ok: false,
        reason: 'rate_limited',
        status: '429 Too Many Requests',
        // (the epsilon absorbs float noise: 6.0000000001 s is 6 s)
        retryAfterS: Math.max(1, Math.ceil(waitMs / 1000 - 1e-6)),
        message: `too many stream upgrades from this address (UPGRADE_RATE_PER_MIN=${this.options.upgradeRatePerMin}, UPGRADE_BURST=${this.options.upgradeBurst})`,
      };
    } finally {
      Atomics.store(this.i32, lock, 0);
    }
  }

  /** Takes a call slot if the process is under MAX_CALLS. Pair every success with releaseCall(). */
  reserveCall(): Verdict {
    const max = this.options.maxCalls;
    for (;;) {
      const cur = Atomics.load(this.i32, I_ACTIVE);
      if (max > 0 && cur >= max) {
        return {
          ok: false,
          reason: 'capacity',
          status: '503 Service Unavailable',
          retryAfterS: 5,
          message: `server at capacity: ${cur} active calls (MAX_CALLS=${max})`,
        };
      }
      if (Atomics.compareExchange(this.i32, I_ACTIVE, cur, cur + 1) === cur) {
        Atomics.add(this.i32, I_WORKER + this.worker, 1);
        this.held++;
        return OK;
      }
    }
  }

  /** Gives back a slot taken by reserveCall(). Extra releases are ignored. */
  releaseCall(): void {
    if (this.held === 0) return;
    this.held--;
    Atomics.sub(this.i32, I_WORKER + this.worker, 1);
    Atomics.sub(this.i32, I_ACTIVE, 1);
  }

  /** Call slots held across the process. */
  activeCalls(): number {
    return Atomics.load(this.i32, I_ACTIVE);
  }

  /** Slots held by this instance (this thread). */
  heldCalls(): number {
    return this.held;
  }

  /** True when a new call would be refused for capacity (readiness uses it). */
  atCapacity(): boolean {
    return this.options.maxCalls > 0 && this.activeCalls() >= this.options.maxCalls;
  }

  /** The uWS WebSocketBehavior limits for the media-stream route (spread them into app.ws()). */
  wsOptions(): { maxPayloadLength: number; idleTimeout: number; maxBackpressure: number; sendPingsAutomatically: boolean } {
    // closeOnBackpressureLimit stays at uWS's default (off): a slow socket drops (and counts)
    // bot audio rather than being closed mid-call.
    return {
      maxPayloadLength: this.options.maxMessageBytes,
      idleTimeout: this.options.wsIdleTimeoutS,
      maxBackpressure: this.options.wsMaxBackpressureBytes,
      sendPingsAutomatically: true,
    };
  }
}
