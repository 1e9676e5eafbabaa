// The fault counters live in the bridge's own registry (so /metrics and the cluster aggregation
// carry them), once per registry, with bounded labels.
import { describe, expect, it } from 'vitest';
import { promFaultMetrics } from '../../src/bridge/faults.js';
import { PromMetrics } from '../../src/metrics.js';
import { sampleValue } from '../fixtures/cluster/prom-text.js';

describe('fault metrics', () => {
  it('counts into the bridge registry, zero-initialised, the same counters for a second bridge on it', async () => {
    const m = new PromMetrics({ eventLoop: false });
    const f = promFaultMetrics(m.registry);
    expect(promFaultMetrics(m.registry)).toBe(f);
    let text = await m.text();
    expect(sampleValue(text, 'voicebridge_stream_closes_total', { reason: 'flood' })).toBe(0);
    expect(sampleValue(text, 'voicebridge_model_responses_total', { status: 'failed' })).toBe(0);
    f.callerAudioDropped(0.2);
    f.callerAudioDropped(0.3);
    f.botAudioDropped(1.5);
    f.carrierPaused();
    f.streamClosed('flood');
    f.streamClosed('too_large');
    f.modelErrorHandled('logged');
    f.modelResponse('failed');
    f.modelResponse('something-new');
    text = await m.text();
    expect(sampleValue(text, 'voicebridge_caller_audio_dropped_seconds_total')).toBeCloseTo(0.5, 9);
    expect(sampleValue(text, 'voicebridge_bot_audio_dropped_seconds_total')).toBe(1.5);
    expect(sampleValue(text, 'voicebridge_outbound_pauses_total')).toBe(1);
    expect(sampleValue(text, 'voicebridge_stream_closes_total', { reason: 'flood' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_stream_closes_total', { reason: 'too_large' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_model_error_actions_total', { action: 'logged' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_model_responses_total', { status: 'failed' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_model_responses_total', { status: 'other' })).toBe(1);
    m.stop();
  });
});
