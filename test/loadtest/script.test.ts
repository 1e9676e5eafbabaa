// The call id carried in the audio (src/loadtest/script.ts) and the latency join
// (src/loadtest/analyze.ts): the parts of the load test whose mistakes would silently produce
// wrong numbers.
import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/loadtest/analyze.js';
import type { CallRecord, LoadResult } from '../../src/loadtest/generator.js';
import type { ModelCollect, SessionRecord } from '../../src/loadtest/model-proc.js';
import {
  HEADER_FRAMES, HeaderDecoder, headerBits, ID_BITS, LOUD_B64, LOUD_THRESHOLD, planCall, probeLoudness, SILENCE_B64,
  SPEECH_B64,
} from '../../src/loadtest/script.js';
import { ulawExpand } from '../../src/dsp/g711.js';

function appendMessage(audioB64: string): Buffer {
  return Buffer.from(JSON.stringify({ type: 'input_audio_buffer.append', audio: audioB64 }), 'latin1');
}

function audioSpan(msg: Buffer): [number, number] {
  const key = '"audio":"';
  const s = msg.indexOf(key) + key.length;
  return [s, msg.indexOf('"', s)];
}

/** mu-law 8 kHz frame -> 24 kHz PCM16 LE samples, by sample repetition (any bridge's upsampling will do). */
function pcm24(mulawB64: string): Int16Array {
  const codes = Buffer.from(mulawB64, 'base64');
  const out = new Int16Array(codes.length * 3);
  for (let i = 0; i < codes.length; i++) for (let r = 0; r < 3; r++) out[i * 3 + r] = ulawExpand(codes[i]);
  return out;
}

function b64(pcm: Int16Array): string {
  return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).toString('base64');
}

function to24k(mulawB64: string): string {
  return b64(pcm24(mulawB64));
}

function loud(b64: string, format: 'pcm24k' | 'pcmu'): number {
  const msg = appendMessage(b64);
  const [s, e] = audioSpan(msg);
  return probeLoudness(msg, s, e, format);
}

describe('loudness probe of an append', () => {
  it('tells the header tone and the barge-in burst from digital silence, in both formats', () => {
    for (const format of ['pcmu', 'pcm24k'] as const) {
      const enc = (b64: string) => (format === 'pcmu' ? b64 : to24k(b64));
      expect(loud(enc(LOUD_B64), format)).toBeGreaterThan(LOUD_THRESHOLD * 2);
      expect(loud(enc(SPEECH_B64), format)).toBeGreaterThan(LOUD_THRESHOLD * 2);
      expect(loud(enc(SILENCE_B64), format)).toBe(0);
    }
  });
});

describe('loudness probe with a resampler delay', () => {
  it('reads loud and silent frames right when each append starts with the previous frame\'s last 5 ms', () => {
    const kinds = [0, 1, 0, 1, 1, 0, 0, 1, 0];
    const stream = new Int16Array(kinds.length * 480 + 120);
    kinds.forEach((k, i) => stream.set(pcm24(k ? LOUD_B64 : SILENCE_B64), 120 + i * 480)); // 5 ms late
    const read = kinds.map((_, i) => (loud(b64(stream.subarray(i * 480, (i + 1) * 480)), 'pcm24k') > LOUD_THRESHOLD ? 1 : 0));
    expect(read).toEqual(kinds);
  });
});

describe('call id header', () => {
  const decode = (frames: number[]) => {
    const d = new HeaderDecoder();
    for (const f of frames) d.push(f === 1);
    return d;
  };

  it('decodes every id after leading silence, and finds the start frame', () => {
    for (const id of [0, 1, 2, 0x1555, 0x2aaa, (1 << ID_BITS) - 1, 1234]) {
      const d = decode([0, 0, 0, ...headerBits(id), 0, 0]);
      expect(d.done).toBe(true);
      expect(d.start).toBe(3);
      expect(d.id).toBe(id);
    }
  });

  it('rejects a header whose check bits disagree (a frame lost or added inside it)', () => {
    const bits = [...headerBits(0x1234)];
    bits.splice(5, 1); // a dropped frame shifts every later bit
    const d = decode([0, ...bits, 0, 0, 0]);
    expect(d.done).toBe(true);
    expect(d.id).toBe(-1);
  });

  it('plans the header after the warm-up and the barge-in after the answer has started', () => {
    const p = planCall(77, 10, { measure: true, bargeIn: true });
    expect(p.totalFrames).toBe(500);
    expect([...p.kinds.slice(p.headerAt, p.headerAt + HEADER_FRAMES)]).toEqual([...headerBits(77)]);
    expect(p.kinds.slice(0, p.headerAt).every((k) => k === 0)).toBe(true);
    expect(p.bargeAt).toBeGreaterThan(p.headerAt + HEADER_FRAMES + 25);
    expect(p.kinds[p.bargeAt]).toBe(2);
    expect(planCall(77, 2, { measure: true, bargeIn: true }).bargeAt).toBe(-1); // too short to answer first
  });
});

describe('latency join', () => {
  const FRAMES = 300;
  function scenario(opts: { inDelay: number; outDelay: number; dropAppend?: number }) {
    const plan = planCall(5, FRAMES / 50, { measure: true, bargeIn: true });
    const t0 = 1000;
    const sendTimes = new Float64Array(FRAMES).map((_, k) => t0 + 20 * (k + 1));
    // the model: appends from the header start on, loud where the plan is loud
    const appendTimes: number[] = [];
    const loudFlags: number[] = [];
    for (let k = plan.headerAt; k < FRAMES; k++) {
      if (k === opts.dropAppend) continue;
      appendTimes.push(sendTimes[k] + opts.inDelay);
      loudFlags.push(plan.kinds[k] ? 1 : 0);
    }
    // the first response: 20 ms deltas (160 samples at 8 kHz) from t = 2500, one frame each
    const deltaTimes = Array.from({ length: 40 }, (_, i) => 2500 + 20 * i);
    const rec: CallRecord = {
      id: 5, headerAt: plan.headerAt, bargeAt: plan.bargeAt, sendTimes,
      recvTimes: Float64Array.from(deltaTimes, (t) => t + opts.outDelay), recvBytes: new Float64Array(40).fill(160),
      bargeSentAt: NaN, clearAt: NaN,
    };
    const session: SessionRecord = {
      id: 5, openedAt: t0, readyAt: t0, appendTimes: Float64Array.from(appendTimes), loud: Uint8Array.from(loudFlags),
      deltaTimes: Float64Array.from(deltaTimes), deltaSamples: new Float64Array(40).fill(160), errors: 0,
    };
    const gen = { records: [rec], barge: { latencies: new Float64Array(0), silenced: new Float64Array(0) } } as unknown as LoadResult;
    const model = { records: [session] } as unknown as ModelCollect;
    return { gen, model };
  }

  it('pairs each frame with its append and each delta with the frame carrying it', () => {
    const { gen, model } = scenario({ inDelay: 3, outDelay: 7 });
    const l = analyze(gen, model);
    expect(l.matchedCalls).toBe(1);
    expect(l.inbound.n).toBe(FRAMES - planCall(5, 6, { measure: true, bargeIn: true }).headerAt);
    expect(l.inbound.p50).toBeCloseTo(3, 9);
    expect(l.inbound.max).toBeCloseTo(3, 9);
    expect(l.outbound.n).toBe(40);
    expect(l.outbound.p99).toBeCloseTo(7, 9);
    expect(l.jitter.max).toBeCloseTo(0, 9);
    expect(l.negative).toBe(0);
  });

  it('reports a call whose appends do not line up with its frames instead of measuring it', () => {
    const { gen, model } = scenario({ inDelay: 3, outDelay: 7, dropAppend: 100 });
    const l = analyze(gen, model);
    expect(l.misalignedCalls).toBe(1);
    expect(l.matchedCalls).toBe(0);
    expect(l.inbound.n).toBe(0);
  });

  it('leaves out frames inside an excluded window', () => {
    const { gen, model } = scenario({ inDelay: 3, outDelay: 7 });
    const all = analyze(gen, model).inbound.n;
    const some = analyze(gen, model, 1, [[3000, 3999]]).inbound.n;
    expect(all - some).toBe(50);
  });
});
