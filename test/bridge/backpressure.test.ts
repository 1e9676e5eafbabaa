// Backpressure on either socket never blocks and never grows without bound: a backed-up Twilio
// socket pauses bot audio (it waits in the outbound queue, whose oldest audio is dropped once
// full), a backed-up model socket drops the new caller audio; every loss is counted and logged.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_MAX_BUFFERED_BYTES, DEFAULT_OUTBOUND_PAUSE_BYTES } from '../../src/bridge/call.js';
import { frame, makeCall, mediaMsg, ready, startMsg, text, type Rig } from './fakes.js';

const QUEUE_BYTES = 2 * 8000; // BASE_OPTIONS.queueSeconds = 2, 8000 mu-law bytes a second

async function started(opts = {}): Promise<Rig> {
  const r = makeCall(opts);
  await ready(r);
  text(r, startMsg());
  return r;
}

/** Bot audio: `n` deltas of `bytes` each, delta k filled with code 0x10 + k (pcmu passthrough). */
function botDeltas(r: Rig, n: number, bytes: number): Buffer {
  r.model.event({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
  r.model.event({ type: 'response.output_item.added', response_id: 'resp_1', item: { id: 'item_a' } });
  const all: Uint8Array[] = [];
  for (let k = 0; k < n; k++) {
    const d = frame(0x10 + k, bytes);
    all.push(d);
    r.model.delta('item_a', d);
  }
  r.model.event({ type: 'response.output_audio.done', response_id: 'resp_1', item_id: 'item_a' });
  return Buffer.concat(all);
}

/** Ticks the pacer on the fake clock until the queue is empty. */
function drain(r: Rig): void {
  for (let i = 0; i < 10_000 && r.call.dsp.queuedBytes() > 0; i++) {
    r.clock.t += 10;
    r.call.tick(r.clock.t);
  }
}

describe('Twilio socket backed up', () => {
  it('pauses bot audio while its send buffer is over OUTBOUND_PAUSE_BYTES; a full queue drops its oldest audio, counted', async () => {
    const r = await started();
    r.carrier.buffered = DEFAULT_OUTBOUND_PAUSE_BYTES + 1;
    // 3 s of bot audio into a 2 s queue, none of it sendable.
    const total = botDeltas(r, 6, 4000);
    expect(r.carrier.json().filter((m) => m.event === 'media')).toEqual([]);
    expect(r.call.stats.outboundPauses).toBe(1);
    expect(r.faults.counts.carrierPaused).toBe(1);
    const queued = r.call.dsp.queuedBytes();
    expect(queued).toBeLessThanOrEqual(QUEUE_BYTES);
    // Nothing lost unaccounted: what is queued plus what was dropped is all that came.
    expect(r.call.stats.botAudioDroppedMs * 8 + queued).toBe(total.length);
    expect(r.call.stats.botAudioDroppedMs).toBeGreaterThanOrEqual(1000);
    expect(r.faults.counts.botAudioDroppedS).toBeCloseTo(r.call.stats.botAudioDroppedMs / 1000, 9);
    expect(r.lines.filter((l) => /dropping the oldest bot audio/.test(l.msg)).length).toBe(1);
    expect(r.lines.filter((l) => /bot audio paused/.test(l.msg)).length).toBe(1);

    // Still paused: ticks send nothing.
    for (let i = 0; i < 20; i++) r.call.tick((r.clock.t += 10));
    expect(r.call.stats.framesOut).toBe(0);

    // The socket drains: pacing resumes with the newest audio, the oldest was what went.
    r.carrier.buffered = 0;
    drain(r);
    const played = r.carrier.mediaBytes();
    expect(played.length).toBe(queued);
    expect(Buffer.compare(played, total.subarray(total.length - queued))).toBe(0);
    expect(r.lines.filter((l) => /bot audio resumes/.test(l.msg)).length).toBe(1);
    expect(r.call.ended).toBe(false);
  });

  it('a socket hovering at the limit is counted every time, but logged only on the 1st, 2nd, 4th, 8th... pause', async () => {
    const r = await started();
    botDeltas(r, 1, 8000);
    for (let i = 0; i < 16; i++) {
      r.carrier.buffered = DEFAULT_OUTBOUND_PAUSE_BYTES + 1;
      r.call.tick((r.clock.t += 10));
      r.carrier.buffered = 0;
      r.call.tick((r.clock.t += 10));
    }
    expect(r.call.stats.outboundPauses).toBe(16);
    expect(r.faults.counts.carrierPaused).toBe(16);
    expect(r.lines.filter((l) => /bot audio paused/.test(l.msg)).map((l) => l.pauses)).toEqual([1, 2, 4, 8, 16]);
  });

  it('with the socket healthy, a delta bigger than the free queue is handed on to Twilio, nothing dropped', async () => {
    const r = await started();
    // Two 1.75 s deltas at once into a 2 s queue.
    const total = botDeltas(r, 2, 14_000);
    expect(r.call.stats.botAudioDroppedMs).toBe(0);
    expect(r.call.stats.outboundPauses).toBe(0);
    drain(r);
    expect(Buffer.compare(r.carrier.mediaBytes(), total)).toBe(0);
  });

  it('bot audio before start (no streamSid to send with) is bounded the same way', async () => {
    const r = makeCall();
    await ready(r);
    const total = botDeltas(r, 5, 4000);
    const queued = r.call.dsp.queuedBytes();
    expect(r.call.stats.botAudioDroppedMs * 8 + queued).toBe(total.length);
    expect(r.call.stats.botAudioDroppedMs).toBeGreaterThan(0);
    text(r, startMsg());
    drain(r);
    expect(Buffer.compare(r.carrier.mediaBytes(), total.subarray(total.length - queued))).toBe(0);
  });
});

describe('model socket backed up', () => {
  it('drops new caller audio while its send buffer is over MODEL_MAX_BUFFERED_BYTES, counted and logged once', async () => {
    const r = await started();
    r.model.buffered = DEFAULT_MODEL_MAX_BUFFERED_BYTES + 1;
    for (let i = 0; i < 10; i++) text(r, mediaMsg(i + 1, frame(0xff)));
    expect(r.model.sentRaw).toEqual([]);
    expect(r.call.stats.framesIn).toBe(10);
    expect(r.call.stats.callerAudioDroppedMs).toBe(200);
    expect(r.faults.counts.callerAudioDroppedS).toBeCloseTo(0.2, 9);
    expect(r.lines.filter((l) => /model socket backed up/.test(l.msg)).length).toBe(1);

    r.model.buffered = 0;
    for (let i = 10; i < 15; i++) text(r, mediaMsg(i + 1, frame(0xff)));
    expect(r.model.sentRaw.length).toBe(5);
    const drained = r.lines.filter((l) => /model socket drained/.test(l.msg));
    expect(drained.length).toBe(1);
    expect(drained[0].droppedMs).toBe(200);
    expect(r.call.ended).toBe(false);
  });

  it('the same limit also applies in pcm24k (20 ms of caller audio per dropped frame)', async () => {
    const r = await started({ format: 'pcm24k' });
    r.model.buffered = DEFAULT_MODEL_MAX_BUFFERED_BYTES + 1;
    for (let i = 0; i < 4; i++) text(r, mediaMsg(i + 1, frame(0xff)));
    expect(r.model.sentRaw).toEqual([]);
    expect(r.call.stats.callerAudioDroppedMs).toBe(80);
  });

  it('before the session is ready, caller audio is kept in order up to the same limit, oldest dropped', async () => {
    // One pcmu append of 160 bytes is 263 message bytes: 7 fit in 2000.
    const r = makeCall({ modelMaxBufferedBytes: 2000 });
    text(r, startMsg());
    for (let i = 0; i < 20; i++) text(r, mediaMsg(i + 1, frame(0xe0 + i)));
    expect(r.model.sentRaw).toEqual([]);
    await ready(r);
    const kept = r.model.sentRaw.length;
    expect(kept).toBe(7);
    const want = Buffer.concat(Array.from({ length: kept }, (_, k) => Buffer.from(frame(0xe0 + 20 - kept + k))));
    expect(Buffer.compare(r.model.appendedAudio(), want)).toBe(0);
    expect(r.call.stats.callerAudioDroppedMs).toBe((20 - kept) * 20);
    expect(r.lines.filter((l) => /queue is full: dropping the oldest caller audio/.test(l.msg)).length).toBe(1);
  });
});
