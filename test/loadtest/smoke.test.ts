// A tiny real load test: 3 calls x 3 s against voicebridge (both modes) and both baselines, each
// bridge, the local model and the generator in their own processes on 127.0.0.1. Checks that the
// report is sane (frames flowed both ways, every call was identified and measured, nothing
// errored); no timing thresholds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareBridges, Harness, type LoadMeasurement } from '../../src/loadtest/run.js';
import { formatHeadToHead } from '../../src/loadtest/report.js';

const CALLS = 3;
const SECONDS = 3;

describe('npm run loadtest (smoke)', () => {
  const h = new Harness({ deltaMs: 20, speed: 1, botSeconds: SECONDS + 1 });
  let results: LoadMeasurement[] = [];

  beforeAll(async () => {
    await h.start();
    results = await compareBridges(h, ['vb24k', 'transcoding', 'vbpcmu', 'passthrough'],
      { calls: CALLS, seconds: SECONDS, measure: true, bargeIn: true }, { warmUp: false, parallelStart: true });
  }, 90_000);

  afterAll(async () => {
    await h.close();
  });

  it('measures every bridge with frames both ways and every call identified', () => {
    expect(results.map((m) => m.spec.key)).toEqual(['vb24k', 'transcoding', 'vbpcmu', 'passthrough']);
    for (const m of results) {
      const name = m.spec.label;
      expect(m.gen.completed, name).toBe(CALLS);
      expect(m.gen.framesSent, name).toBe(CALLS * SECONDS * 50);
      expect(m.gen.errors, name).toEqual({});
      expect(m.latency.matchedCalls, name).toBe(CALLS);
      expect(m.latency.unmatchedCalls + m.latency.misalignedCalls + m.latency.negative, name).toBe(0);
      expect(m.latency.inbound.n, name).toBeGreaterThan(CALLS * 50);
      expect(m.latency.outbound.n, name).toBeGreaterThan(CALLS * 10);
      expect(m.gen.mediaIn, name).toBeGreaterThan(CALLS * 10);
      expect(m.model.sessions, name).toBe(CALLS);
      expect(m.bridge.errors, name).toBe(0);
      expect(m.leftOpen, name).toBe(0);
      expect(m.cpu.bridgeS, name).toBeGreaterThan(0);
      expect(Number.isFinite(m.cpuPerCallSecond), name).toBe(true);
      expect(m.rss.idle, name).toBeGreaterThan(0);
      expect(m.gen.barge.falseClears, name).toBe(0);
      expect(m.errors, name).toBe(0);
    }
  });

  it('reports no model errors for voicebridge (the baselines copy the sample\'s truncate past the audio sent)', () => {
    for (const m of results) {
      if (m.spec.kind === 'voicebridge') expect(m.model.errorEvents, m.spec.label).toBe(0);
      else for (const code of Object.keys(m.model.errorCodes)) expect(code, m.spec.label).toBe('invalid_value');
    }
  });

  it('prints one head-to-head table with the ratio columns', () => {
    const text = formatHeadToHead(results);
    expect(text).toContain('(a) / vb');
    expect(text).toContain('(b) / vb');
    expect(text.split('\n')[0]).toContain('voicebridge pcm24k');
  });
});
