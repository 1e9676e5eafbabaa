import { afterEach, describe, expect, it } from 'vitest';
import {
  aggregateMetrics,
  badMessageKind,
  MAX_ERROR_CODES,
  NOOP_METRICS,
  PromMetrics,
  type BadMessageKind,
  type BridgeMetrics,
  type PromMetricsOptions,
} from '../src/metrics.js';
import { parseControlMessage } from '../src/twilio/protocol.js';
import { parseSamples, sampleValue } from './fixtures/cluster/prom-text.js';

const made: PromMetrics[] = [];
function metrics(opts: PromMetricsOptions = {}): PromMetrics {
  const m = new PromMetrics({ eventLoop: false, ...opts });
  made.push(m);
  return m;
}
afterEach(() => {
  for (const m of made.splice(0)) m.stop();
});

const stats = () => ({ framesIn: 0, framesOut: 0, bargeIns: 0 });

describe('calls', () => {
  it('counts active calls and ended calls by outcome, once per call', async () => {
    const m = metrics();
    const a = stats();
    const b = stats();
    m.callStarted(a);
    m.callStarted(b);
    let text = await m.text();
    expect(sampleValue(text, 'voicebridge_active_calls')).toBe(2);
    m.callEnded('completed', a);
    m.callEnded('completed', a);
    m.callEnded('model_failed', b);
    text = await m.text();
    expect(sampleValue(text, 'voicebridge_active_calls')).toBe(0);
    expect(sampleValue(text, 'voicebridge_calls_total', { outcome: 'completed' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_calls_total', { outcome: 'model_failed' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_calls_total', { outcome: 'hangup' })).toBe(0);
  });

  it('reads frame and barge-in counts from live calls at scrape time, and keeps them after the call ends', async () => {
    const m = metrics();
    const a = stats();
    m.callStarted(a);
    a.framesIn = 10;
    a.framesOut = 4;
    expect(sampleValue(await m.text(), 'voicebridge_frames_in_total')).toBe(10);
    a.framesIn = 25;
    a.bargeIns = 1;
    let text = await m.text();
    expect(sampleValue(text, 'voicebridge_frames_in_total')).toBe(25);
    expect(sampleValue(text, 'voicebridge_barge_ins_total')).toBe(1);
    m.callEnded('completed', a);
    const b = stats();
    m.callStarted(b);
    b.framesIn = 5;
    text = await m.text();
    expect(sampleValue(text, 'voicebridge_frames_in_total')).toBe(30);
    expect(sampleValue(text, 'voicebridge_frames_out_total')).toBe(4);
    // A call ended without having been started (e.g. refused early) still counts once.
    const c = { framesIn: 3, framesOut: 0, bargeIns: 0 };
    m.callEnded('bad_stream', c);
    m.callStarted(c);
    expect(sampleValue(await m.text(), 'voicebridge_frames_in_total')).toBe(33);
  });
});

describe('DSP time sampling', () => {
  it('times exactly 1 frame in N and files it in the microsecond buckets', async () => {
    let t = 1000;
    const m = metrics({ dspSampleEvery: 64, now: () => t });
    let sampled = 0;
    for (let i = 0; i < 128; i++) {
      const start = m.dspStart();
      if (start >= 0) {
        sampled++;
        expect(i % 64).toBe(0);
      }
      t += 0.004; // 4 us of "DSP"
      m.dspEnd('inbound', start);
    }
    expect(sampled).toBe(2);
    const text = await m.text();
    expect(sampleValue(text, 'voicebridge_dsp_seconds_count', { path: 'inbound' })).toBe(2);
    expect(sampleValue(text, 'voicebridge_dsp_seconds_bucket', { path: 'inbound', le: 2e-6 })).toBe(0);
    expect(sampleValue(text, 'voicebridge_dsp_seconds_bucket', { path: 'inbound', le: 5e-6 })).toBe(2);
    expect(sampleValue(text, 'voicebridge_dsp_seconds_count', { path: 'outbound' })).toBe(0);
  });

  it('only samples at power-of-two rates', () => {
    expect(() => new PromMetrics({ dspSampleEvery: 48, eventLoop: false })).toThrow(RangeError);
  });
});

describe('bounded labels', () => {
  it('keeps at most MAX_ERROR_CODES model error codes, the rest as other', async () => {
    const m = metrics();
    for (let i = 0; i < MAX_ERROR_CODES + 8; i++) m.modelError(`code_${i}`);
    m.modelError('code_0');
    m.modelError(undefined);
    const codes = parseSamples(await m.text()).filter((s) => s.name === 'voicebridge_model_errors_total');
    expect(codes.length).toBe(MAX_ERROR_CODES + 1);
    expect(codes.find((s) => s.labels.code === 'code_0')?.value).toBe(2);
    expect(codes.find((s) => s.labels.code === 'other')?.value).toBe(9);
    expect(codes.find((s) => s.labels.code === 'unknown')).toBeUndefined();
  });

  it('counts an unknown bad-message kind as other', async () => {
    const m = metrics();
    m.badMessage('made-up' as BadMessageKind);
    m.badMessage('json');
    const text = await m.text();
    expect(sampleValue(text, 'voicebridge_bad_messages_total', { kind: 'other' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_bad_messages_total', { kind: 'json' })).toBe(1);
  });

  it('maps the Twilio parser\'s and the call\'s error texts to kinds', () => {
    const err = (text: string) => {
      const r = parseControlMessage(text);
      if (r.ok) throw new Error('expected an error');
      return r.error;
    };
    expect(badMessageKind(err('{not json'))).toBe('json');
    expect(badMessageKind(err('[1,2]'))).toBe('json');
    expect(badMessageKind(err('{"event":"bogus","sequenceNumber":"1"}'))).toBe('unknown_event');
    expect(badMessageKind(err(JSON.stringify({
      event: 'media', sequenceNumber: '2', streamSid: 'MZ1',
      media: { track: 'inbound', chunk: '1', timestamp: '20', payload: '***' },
    })))).toBe('base64');
    expect(badMessageKind(err(JSON.stringify({ event: 'mark', sequenceNumber: '3', streamSid: 'MZ1' })))).toBe('invalid');
    // call.ts's own texts
    expect(badMessageKind('media payload is not valid base64')).toBe('base64');
    expect(badMessageKind('media payload too large')).toBe('too_large');
    expect(badMessageKind('binary frame')).toBe('binary');
    expect(badMessageKind('second start on the same stream ignored')).toBe('duplicate_start');
    expect(badMessageKind('media before start: audio kept, stream not yet identified')).toBe('before_start');
  });
});

describe('latency histograms', () => {
  it('records barge-in, first-audio and truncation observations and ignores non-finite ones', async () => {
    const m = metrics();
    m.bargeIn(0.003);
    m.bargeIn(Number.NaN);
    m.modelFirstAudio(0.42);
    m.truncationError(-35);
    m.truncationError(Number.POSITIVE_INFINITY);
    const text = await m.text();
    expect(sampleValue(text, 'voicebridge_barge_in_latency_seconds_count')).toBe(1);
    expect(sampleValue(text, 'voicebridge_barge_in_latency_seconds_bucket', { le: 0.001 })).toBe(0);
    expect(sampleValue(text, 'voicebridge_barge_in_latency_seconds_bucket', { le: 0.005 })).toBe(1);
    expect(sampleValue(text, 'voicebridge_model_first_audio_seconds_bucket', { le: 0.3 })).toBe(0);
    expect(sampleValue(text, 'voicebridge_model_first_audio_seconds_bucket', { le: 0.5 })).toBe(1);
    // The error is a distance: -35 ms counts as 35 ms.
    expect(sampleValue(text, 'voicebridge_truncation_error_ms_count')).toBe(1);
    expect(sampleValue(text, 'voicebridge_truncation_error_ms_bucket', { le: 20 })).toBe(0);
    expect(sampleValue(text, 'voicebridge_truncation_error_ms_bucket', { le: 40 })).toBe(1);
  });
});

describe('aggregation across worker threads', () => {
  it('sums the same series from every thread and keeps per-thread lag apart', async () => {
    const w0 = metrics({ thread: '0', eventLoop: true });
    const w1 = metrics({ thread: '1', eventLoop: true });
    const a = stats();
    const b = stats();
    const c = stats();
    w0.callStarted(a);
    w1.callStarted(b);
    w1.callStarted(c);
    a.framesIn = 100;
    b.framesIn = 7;
    w1.callEnded('hangup', c);
    w0.bargeIn(0.002);
    w1.bargeIn(0.03);
    w1.upgradeRejected('capacity');
    w0.upgradeRejected('capacity');
    w0.setDraining(true);
    w1.setDraining(true);
    // What crosses the thread boundary: structured clones of getMetricsAsJSON().
    const parts = [structuredClone(await w0.metricsJson()), structuredClone(await w1.metricsJson())];
    const text = await aggregateMetrics(parts);
    expect(sampleValue(text, 'voicebridge_active_calls')).toBe(2);
    expect(sampleValue(text, 'voicebridge_frames_in_total')).toBe(107);
    expect(sampleValue(text, 'voicebridge_calls_total', { outcome: 'hangup' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_upgrades_rejected_total', { reason: 'capacity' })).toBe(2);
    expect(sampleValue(text, 'voicebridge_barge_in_latency_seconds_count')).toBe(2);
    expect(sampleValue(text, 'voicebridge_barge_in_latency_seconds_bucket', { le: 0.005 })).toBe(1);
    expect(sampleValue(text, 'voicebridge_barge_in_latency_seconds_bucket', { le: 0.05 })).toBe(2);
    // A flag, not a count.
    expect(sampleValue(text, 'voicebridge_draining')).toBe(1);
    const lag = parseSamples(text).filter((s) => s.name === 'voicebridge_eventloop_lag_max_seconds');
    expect(lag.map((s) => s.labels.thread).sort()).toEqual(['0', '1']);
  });

  it('adds prom-client\'s process metrics only where asked (once per process)', async () => {
    expect(await metrics().text()).not.toContain('process_cpu_user_seconds_total');
    expect(await metrics({ defaultMetrics: true }).text()).toContain('process_cpu_user_seconds_total');
  });
});

describe('NOOP_METRICS', () => {
  it('implements the interface, never samples, and never throws', () => {
    const m: BridgeMetrics = NOOP_METRICS;
    expect(m.dspStart()).toBe(-1);
    const s = stats();
    expect(() => {
      m.callStarted(s);
      m.dspEnd('inbound', m.dspStart());
      m.bargeIn(1);
      m.modelFirstAudio(1);
      m.truncationError(1);
      m.modelError('x');
      m.backpressureDrop();
      m.badMessage('json');
      m.upgradeRejected('draining');
      m.setDraining(true);
      m.callEnded('completed', s);
    }).not.toThrow();
  });
});
