import { describe, expect, it } from 'vitest';
import { PlaybackModel } from '../../src/simulate/playback.js';
import { detectUtterances } from '../../src/simulate/utterances.js';

const bytes = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);

describe('PlaybackModel (Twilio playback buffer)', () => {
  it('starts playing audio when it arrives and appends later audio back to back', () => {
    const p = new PlaybackModel(4000);
    expect(p.append(100, bytes(160, 1))).toBe(100);
    expect(p.append(120, bytes(160, 2))).toBe(260); // still buffered: queued after the first
    expect(p.buffered(200)).toBe(220);
    expect(Array.from(p.heard.subarray(98, 102))).toEqual([0xff, 0xff, 1, 1]);
    expect(Array.from(p.heard.subarray(258, 262))).toEqual([1, 1, 2, 2]);
    expect(p.heard[420]).toBe(0xff);
    expect(p.runs).toEqual([{ start: 100, end: 420, endedByClear: false }]);
  });

  it('starts a new run after the buffer ran dry', () => {
    const p = new PlaybackModel(4000);
    p.append(0, bytes(160, 1));
    p.append(400, bytes(160, 2));
    expect(p.runs).toEqual([
      { start: 0, end: 160, endedByClear: false },
      { start: 400, end: 560, endedByClear: false },
    ]);
  });

  it('echoes a mark when playback reaches it, not before', () => {
    const p = new PlaybackModel(4000);
    p.append(0, bytes(800, 1));
    expect(p.mark(10, 'end')).toBe(false);
    expect(p.nextMarkAt()).toBe(800);
    expect(p.takeDueMarks(799)).toEqual([]);
    expect(p.takeDueMarks(800)).toEqual(['end']);
    expect(p.nextMarkAt()).toBeUndefined();
  });

  it('queues marks at their buffer positions, in order', () => {
    const p = new PlaybackModel(4000);
    p.append(0, bytes(160, 1));
    p.mark(0, 'a');
    p.append(0, bytes(160, 1));
    p.mark(0, 'b');
    expect(p.takeDueMarks(200)).toEqual(['a']);
    expect(p.takeDueMarks(320)).toEqual(['b']);
  });

  it('echoes a mark at once when nothing is buffered', () => {
    const p = new PlaybackModel(4000);
    expect(p.mark(0, 'x')).toBe(true);
    p.append(0, bytes(160, 1));
    expect(p.mark(500, 'y')).toBe(true);
  });

  it('clear drops unplayed audio from what is heard and returns every pending mark', () => {
    const p = new PlaybackModel(4000);
    p.append(0, bytes(1600, 7));
    p.mark(0, 'm1');
    p.append(0, bytes(1600, 8));
    p.mark(0, 'm2');
    expect(p.clear(400)).toEqual(['m1', 'm2']);
    expect(p.heard[399]).toBe(7);
    expect(p.heard.subarray(400).every((c) => c === 0xff)).toBe(true);
    expect(p.runs).toEqual([{ start: 0, end: 400, endedByClear: true }]);
    expect(p.buffered(400)).toBe(0);
    expect(p.nextMarkAt()).toBeUndefined();
    // audio after the clear plays at once, as a new run
    expect(p.append(400, bytes(10, 9))).toBe(400);
    expect(p.runs[1]).toEqual({ start: 400, end: 410, endedByClear: false });
  });

  it('clear with nothing playing changes no run', () => {
    const p = new PlaybackModel(4000);
    p.append(0, bytes(100, 1));
    expect(p.clear(200)).toEqual([]);
    expect(p.runs).toEqual([{ start: 0, end: 100, endedByClear: false }]);
  });

  it('does not write past the end of the call', () => {
    const p = new PlaybackModel(200);
    p.append(150, bytes(100, 3));
    expect(p.heard.length).toBe(200);
    expect(p.heard[199]).toBe(3);
  });
});

describe('detectUtterances', () => {
  const tone = (ms: number, amp: number): Int16Array =>
    Int16Array.from({ length: ms * 8 }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * 440 * i) / 8000)));
  const concat = (...parts: Int16Array[]): Int16Array => {
    const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };

  it('finds speech bursts at 20 ms resolution, merging pauses shorter than the hangover', () => {
    const pcm = concat(tone(200, 0), tone(300, 8000), tone(200, 0), tone(200, 8000), tone(1000, 0), tone(400, 8000), tone(500, 0));
    expect(detectUtterances(pcm)).toEqual([
      { startMs: 200, endMs: 900 },
      { startMs: 1900, endMs: 2300 },
    ]);
  });

  it('ignores quiet noise and clicks', () => {
    const pcm = concat(tone(500, 50), tone(20, 20000), tone(500, 0));
    expect(detectUtterances(pcm)).toEqual([]);
  });
});
