// Prometheus metrics (prom-client), one registry per thread. The bridge sees only the narrow
// `BridgeMetrics` interface; NOOP_METRICS is its do-nothing twin for tests and tools.
//
// Hot-path rules: per-frame work is never a prom-client call. Frame and barge-in counts are read
// from each live call's own stats object when Prometheus scrapes (the bridge already counts them),
// and DSP time is measured for 1 frame in `dspSampleEvery` (a counter and a mask otherwise).
//
// Across worker threads: each worker posts `metricsJson()` to the main thread, which merges them
// with `aggregateMetrics` (prom-client's AggregatorRegistry.aggregate: sums series with equal
// labels). Per-thread facts (event-loop lag) carry a `thread` label so they are never summed.
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
} from 'prom-client';
import type { CallOutcome } from './bridge/call.js';

/** The per-call counters a live call keeps itself (Call.stats satisfies this). */
export interface CallCounters {
  readonly framesIn: number;
  readonly framesOut: number;
  readonly bargeIns: number;
}

/** Bounded label values for bad Twilio messages. */
export type BadMessageKind =
  | 'json' // not JSON
  | 'invalid' // JSON, but not a valid Twilio message
  | 'unknown_event'
  | 'base64' // media payload is not valid base64
  | 'too_large' // media payload larger than a frame buffer
  | 'binary' // a binary WebSocket frame
  | 'duplicate_start'
  | 'before_start' // media before the start message
  | 'other';

export type UpgradeRejectReason = 'draining' | 'capacity' | 'rate_limited' | 'bad_signature' | 'bad_request';
export type DspPath = 'inbound' | 'outbound';

/** What the bridge reports. Every method is cheap; none throws. */
export interface BridgeMetrics {
  /** A call opened; its counters are read live until callEnded. */
  callStarted(stats: CallCounters): void;
  /** A call ended (once per call): counts the outcome, folds its counters into the totals. */
  callEnded(outcome: CallOutcome, stats: CallCounters): void;
  /** performance.now() for 1 frame in `dspSampleEvery`, else -1: time only those frames. */
  dspStart(): number;
  /** Records the DSP time of a sampled frame (no-op when start < 0). */
  dspEnd(path: DspPath, start: number): void;
  /** Seconds from the caller's speech onset (the frame that triggered it) to the clear being sent. */
  bargeIn(onsetToClearSeconds: number): void;
  /** Seconds from when the model was due to answer (caller stopped / response.create) to its first audio delta. */
  modelFirstAudio(seconds: number): void;
  /** |audio_end_ms sent in a truncate - audio actually played| in ms, or its bound where not known exactly. */
  truncationError(ms: number): void;
  /** A model `error` event (by error.code; unknown codes past a bound are counted as 'other'). */
  modelError(code: string | null | undefined): void;
  /** A message to Twilio dropped because the socket's backpressure limit was reached. */
  backpressureDrop(): void;
  badMessage(kind: BadMessageKind): void;
  upgradeRejected(reason: UpgradeRejectReason): void;
  /** 1 while this thread is draining (readiness fails, no new calls). */
  setDraining(draining: boolean): void;
}

/** prom-client's JSON form of one registry, as posted between threads (structured-clone safe). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export const NOOP_METRICS: BridgeMetrics = Object.freeze({
  callStarted() {},
  callEnded() {},
  dspStart: () => -1,
  dspEnd() {},
  bargeIn() {},
  modelFirstAudio() {},
  truncationError() {},
  modelError() {},
  backpressureDrop() {},
  badMessage() {},
  upgradeRejected() {},
  setDraining() {},
});

export const METRIC_PREFIX = 'voicebridge_';
/** Event-loop delay sampling interval per thread (ms). */
export const EVENT_LOOP_RESOLUTION_MS = 10;

/** 1 us .. 1 ms: a whole-frame kernel takes a few microseconds. */
export const DSP_BUCKETS = [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3];
export const BARGE_IN_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2];
export const FIRST_AUDIO_BUCKETS = [0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];
export const TRUNCATION_MS_BUCKETS = [0, 10, 20, 40, 60, 80, 100, 150, 200, 400, 1000];

// Every outcome, so each series exists (at 0) from the first scrape; typed so a new outcome must be listed.
const OUTCOMES_BY_NAME: Record<CallOutcome, true> = {
  completed: true, hangup: true, model_failed: true, no_start: true, bad_stream: true, flood: true,
  model_error: true, shutdown: true,
};
const OUTCOMES = Object.keys(OUTCOMES_BY_NAME) as CallOutcome[];
const BAD_KINDS: BadMessageKind[] = ['json', 'invalid', 'unknown_event', 'base64', 'too_large', 'binary', 'duplicate_start', 'before_start', 'other'];
const REJECT_REASONS: UpgradeRejectReason[] = ['draining', 'capacity', 'rate_limited', 'bad_signature', 'bad_request'];

/** Distinct model error codes kept as label values; the rest are 'other' (cardinality bound). */
export const MAX_ERROR_CODES = 32;

export interface PromMetricsOptions {
  /** Label value for this thread's per-thread series ('main', or the worker index). */
  thread?: string;
  /** Also collect prom-client's default process/runtime metrics (once per process: main thread). */
  defaultMetrics?: boolean;
  /** Time 1 frame in this many (power of two). Default 64. */
  dspSampleEvery?: number;
  /** Clock for dspStart (ms). Default performance.now. */
  now?: () => number;
  /** Per-thread event-loop delay monitor. Default on. */
  eventLoop?: boolean;
}

/** Maps the bridge's bad-message texts (call.ts, twilio/protocol.ts errors) to a bounded kind. */
export function badMessageKind(why: string): BadMessageKind {
  if (why.startsWith('invalid JSON') || why.startsWith('expected a JSON object')) return 'json';
  if (why.startsWith('unknown event')) return 'unknown_event';
  if (why.includes('base64')) return 'base64';
  if (why.includes('too large')) return 'too_large';
  if (why.includes('binary')) return 'binary';
  if (why.includes('second start')) return 'duplicate_start';
  if (why.startsWith('media before start')) return 'before_start';
  return why ? 'invalid' : 'other';
}

export class PromMetrics implements BridgeMetrics {
  readonly registry = new Registry();
  private readonly live = new Set<CallCounters>();
  private readonly ended = new WeakSet<CallCounters>();
  /** Totals of ended calls; live calls are added at scrape time. */
  private readonly endedTotals = { framesIn: 0, framesOut: 0, bargeIns: 0 };
  private readonly sampleMask: number;
  private sampleCount = 0;
  private readonly now: () => number;
  private readonly dspIn: Histogram.Internal<string>;
  private readonly dspOut: Histogram.Internal<string>;
  private readonly calls: Counter<'outcome'>;
  private readonly bargeInLatency: Histogram;
  private readonly firstAudio: Histogram;
  private readonly truncation: Histogram;
  private readonly modelErrors: Counter<'code'>;
  private readonly errorCodes = new Set<string>();
  private readonly drops: Counter;
  private readonly badMessages: Counter<'kind'>;
  private readonly rejected: Counter<'reason'>;
  private readonly draining: Gauge;
  private readonly loop: IntervalHistogram | undefined;

  constructor(opts: PromMetricsOptions = {}) {
    const every = opts.dspSampleEvery ?? 64;
    if (!Number.isInteger(every) || every < 1 || (every & (every - 1)) !== 0) {
      throw new RangeError(`dspSampleEvery must be a power of two, got ${every}`);
    }
    this.sampleMask = every - 1;
    this.now = opts.now ?? (() => performance.now());
    const thread = opts.thread ?? 'main';
    const registers = [this.registry];
    const p = METRIC_PREFIX;

    const live = this.live;
    new Gauge({
      name: `${p}active_calls`, help: 'Calls in progress.', registers,
      collect() { this.set(live.size); },
    });
    this.calls = new Counter({ name: `${p}calls_total`, help: 'Ended calls by outcome.', labelNames: ['outcome'], registers });
    for (const o of OUTCOMES) this.calls.inc({ outcome: o }, 0);

    this.liveCounter(`${p}frames_in_total`, 'Twilio media frames received (20 ms each).', 'framesIn');
    this.liveCounter(`${p}frames_out_total`, 'Media frames sent to Twilio (20 ms each).', 'framesOut');
    this.liveCounter(`${p}barge_ins_total`, 'Times the caller interrupted the bot.', 'bargeIns');

    const dsp = new Histogram({
      name: `${p}dsp_seconds`,
      help: `WASM DSP time per frame/delta, sampled 1 in ${every}.`,
      labelNames: ['path'], buckets: DSP_BUCKETS, registers,
    });
    dsp.zero({ path: 'inbound' });
    dsp.zero({ path: 'outbound' });
    this.dspIn = dsp.labels('inbound');
    this.dspOut = dsp.labels('outbound');
    this.bargeInLatency = new Histogram({
      name: `${p}barge_in_latency_seconds`, help: 'Caller speech onset to clear sent.',
      buckets: BARGE_IN_BUCKETS, registers,
    });
    this.firstAudio = new Histogram({
      name: `${p}model_first_audio_seconds`, help: 'Model due to answer to its first audio delta.',
      buckets: FIRST_AUDIO_BUCKETS, registers,
    });
    this.truncation = new Histogram({
      name: `${p}truncation_error_ms`, help: 'audio_end_ms of a truncate minus the audio of that item confirmed played by echoed marks: the estimated part, an upper bound on the error (ms).',
      buckets: TRUNCATION_MS_BUCKETS, registers,
    });
    this.modelErrors = new Counter({ name: `${p}model_errors_total`, help: 'Model error events by code.', labelNames: ['code'], registers });
    this.drops = new Counter({ name: `${p}backpressure_drops_total`, help: 'Messages to Twilio dropped at the backpressure limit.', registers });
    this.badMessages = new Counter({ name: `${p}bad_messages_total`, help: 'Invalid Twilio messages by kind.', labelNames: ['kind'], registers });
    for (const k of BAD_KINDS) this.badMessages.inc({ kind: k }, 0);
    this.rejected = new Counter({ name: `${p}upgrades_rejected_total`, help: 'Media-stream upgrades refused, by reason.', labelNames: ['reason'], registers });
    for (const r of REJECT_REASONS) this.rejected.inc({ reason: r }, 0);
    this.draining = new Gauge({
      name: `${p}draining`, help: '1 while draining (not ready, no new calls).', registers, aggregator: 'max',
    });

    if (opts.eventLoop !== false) {
      // The monitor's samples include its own timer interval: lag is what exceeds it.
      const resolutionNs = EVENT_LOOP_RESOLUTION_MS * 1e6;
      const h = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
      h.enable();
      this.loop = h;
      const loopGauge = (name: string, help: string, read: (h: IntervalHistogram) => number, reset: boolean) =>
        new Gauge({
          name: `${p}eventloop_lag_${name}_seconds`, help: `${help} Per thread, since the previous scrape.`,
          labelNames: ['thread'], registers,
          collect() {
            const v = h.count > 0 ? Math.max(0, read(h) - resolutionNs) / 1e9 : 0;
            this.set({ thread }, v);
            if (reset) h.reset();
          },
        });
      // Registration order is collection order: the last one resets the window.
      loopGauge('mean', 'Event-loop delay mean.', (x) => x.mean, false);
      loopGauge('p99', 'Event-loop delay p99.', (x) => x.percentile(99), false);
      loopGauge('max', 'Event-loop delay max.', (x) => x.max, true);
    }
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  private liveCounter(name: string, help: string, field: keyof CallCounters): void {
    const live = this.live;
    const totals = this.endedTotals;
    let reported = 0;
    new Counter({
      name, help, registers: [this.registry],
      collect() {
        let total = totals[field];
        for (const s of live) total += s[field];
        // Per-call counters only grow, and an ended call's final value moves into the totals: the
        // sum never decreases. The guard keeps the counter monotonic even if a caller breaks that.
        if (total > reported) {
          this.inc(total - reported);
          reported = total;
        }
      },
    });
  }

  callStarted(stats: CallCounters): void {
    if (!this.ended.has(stats)) this.live.add(stats);
  }

  callEnded(outcome: CallOutcome, stats: CallCounters): void {
    if (this.ended.has(stats)) return;
    this.ended.add(stats);
    this.live.delete(stats);
    this.endedTotals.framesIn += stats.framesIn;
    this.endedTotals.framesOut += stats.framesOut;
    this.endedTotals.bargeIns += stats.bargeIns;
    this.calls.inc({ outcome });
  }

  dspStart(): number {
    return (this.sampleCount++ & this.sampleMask) === 0 ? this.now() : -1;
  }

  dspEnd(path: DspPath, start: number): void {
    if (start < 0) return;
    const s = (this.now() - start) / 1000;
    (path === 'inbound' ? this.dspIn : this.dspOut).observe(s > 0 ? s : 0);
  }

  bargeIn(seconds: number): void {
    if (Number.isFinite(seconds)) this.bargeInLatency.observe(Math.max(0, seconds));
  }

  modelFirstAudio(seconds: number): void {
    if (Number.isFinite(seconds)) this.firstAudio.observe(Math.max(0, seconds));
  }

  truncationError(ms: number): void {
    if (Number.isFinite(ms)) this.truncation.observe(Math.abs(ms));
  }

  modelError(code: string | null | undefined): void {
    let c = typeof code === 'string' && code.length > 0 && code.length <= 64 ? code : 'unknown';
    if (!this.errorCodes.has(c)) {
      if (this.errorCodes.size >= MAX_ERROR_CODES) c = 'other';
      else this.errorCodes.add(c);
    }
    this.modelErrors.inc({ code: c });
  }

  backpressureDrop(): void {
    this.drops.inc();
  }

  badMessage(kind: BadMessageKind): void {
    this.badMessages.inc({ kind: BAD_KINDS.includes(kind) ? kind : 'other' });
  }

  upgradeRejected(reason: UpgradeRejectReason): void {
    this.rejected.inc({ reason: REJECT_REASONS.includes(reason) ? reason : 'bad_request' });
  }

  setDraining(draining: boolean): void {
    this.draining.set(draining ? 1 : 0);
  }

  /** Live calls tracked (the active_calls gauge). */
  get activeCalls(): number {
    return this.live.size;
  }

  /** This thread's metrics as JSON: what a worker posts to the main thread. */
  metricsJson(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON();
  }

  /** Prometheus text exposition of this registry alone. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops the event-loop monitor (tests, shutdown). */
  stop(): void {
    this.loop?.disable();
  }
}

/**
 * The main thread's registry in cluster mode: prom-client's default process/runtime metrics
 * (process-wide CPU, memory, fds; the main thread's heap and loop) and the worker pool.
 */
export class ProcessMetrics {
  readonly registry = new Registry();
  readonly workers: Gauge;
  readonly restarts: Counter;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.workers = new Gauge({ name: `${METRIC_PREFIX}workers`, help: 'Bridge worker threads listening.', registers });
    this.restarts = new Counter({ name: `${METRIC_PREFIX}worker_restarts_total`, help: 'Worker threads that died and were replaced.', registers });
  }

  metricsJson(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON();
  }

  /** Nothing to release today (prom-client's monitors do not hold the event loop); kept for symmetry. */
  stop(): void {}
}

/** Merges the JSON of several registries (one per thread) into one Prometheus text. */
export function aggregateMetrics(parts: MetricsJson[]): Promise<string> {
  return AggregatorRegistry.aggregate(parts).metrics();
}

export const METRICS_CONTENT_TYPE = new Registry().contentType;
