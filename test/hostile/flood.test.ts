// The inbound flood cap, on a hand-driven clock: a token bucket of MAX_MESSAGES_PER_S holding
// FLOOD_BURST_SECONDS of it. Sustained at the cap a stream lives; over it, it is closed with
// 1008 "message rate exceeded", counted, logged with the call's ids, and nothing after is read.
import { describe, expect, it } from 'vitest';
import { FLOOD_BURST_SECONDS, FLOOD_CLOSE_CODE, FLOOD_CLOSE_REASON } from '../../src/bridge/call.js';
import { CALL_SID, frame, makeCall, mediaMsg, ready, startMsg, text } from '../bridge/fakes.js';

const RATE = 200;

describe('inbound flood cap', () => {
  it('a burst of FLOOD_BURST_SECONDS worth passes; the next message closes the stream with 1008', async () => {
    const r = makeCall({ maxMessagesPerSecond: RATE });
    await ready(r);
    text(r, startMsg());
    const burst = RATE * FLOOD_BURST_SECONDS;
    // All at the same instant (the start message took one token).
    for (let i = 1; i < burst; i++) text(r, mediaMsg(i, frame(0xff)));
    expect(r.call.ended).toBe(false);
    expect(r.model.sentRaw.length).toBe(burst - 1);
    text(r, mediaMsg(burst, frame(0xff)));
    expect(r.call.outcome).toBe('flood');
    expect(r.carrier.closes).toEqual([{ code: FLOOD_CLOSE_CODE, reason: FLOOD_CLOSE_REASON }]);
    expect(r.faults.counts['streamClosed:flood']).toBe(1);
    const line = r.lines.find((l) => /flood/.test(l.msg))!;
    expect(line.level).toBe(50);
    expect(line.callSid).toBe(CALL_SID);
    expect(r.call.dsp.freed).toBe(true);
    expect(r.model.closes.length).toBe(1);
    // Nothing more is processed, and the end happened once.
    text(r, mediaMsg(burst + 1, frame(0xff)));
    r.call.rejectBinary();
    expect(r.model.sentRaw.length).toBe(burst - 1);
    expect(r.ends.length).toBe(1);
  });

  it('sustained exactly at the cap for 10 s, a stream is never closed', async () => {
    const r = makeCall({ maxMessagesPerSecond: RATE });
    await ready(r);
    text(r, startMsg());
    for (let i = 1; i <= RATE * 10; i++) {
      r.clock.t += 1000 / RATE;
      text(r, mediaMsg(i, frame(0xff)));
    }
    expect(r.call.ended).toBe(false);
    expect(r.call.stats.framesIn).toBe(RATE * 10);
  });

  it('25% over the cap is closed once the burst allowance is used up, not before', async () => {
    const r = makeCall({ maxMessagesPerSecond: RATE });
    await ready(r);
    text(r, startMsg());
    const rate = RATE * 1.25;
    let n = 0;
    while (!r.call.ended && n < 100_000) {
      r.clock.t += 1000 / rate;
      text(r, mediaMsg(++n, frame(0xff)));
    }
    // The bucket loses (rate - RATE) tokens a second from its RATE * FLOOD_BURST_SECONDS: the
    // closing message is the one that finds it empty.
    const seconds = (RATE * FLOOD_BURST_SECONDS) / (rate - RATE);
    expect(n / rate).toBeGreaterThan(seconds - 0.05);
    expect(n / rate).toBeLessThan(seconds + 0.05);
    expect(r.call.outcome).toBe('flood');
  });

  it('binary frames count against the cap too', async () => {
    const r = makeCall({ maxMessagesPerSecond: RATE });
    await ready(r);
    text(r, startMsg());
    for (let i = 1; i < RATE * FLOOD_BURST_SECONDS; i++) r.call.rejectBinary();
    expect(r.call.ended).toBe(false);
    expect(r.call.stats.badMessages).toBe(RATE * FLOOD_BURST_SECONDS - 1);
    r.call.rejectBinary();
    expect(r.call.outcome).toBe('flood');
  });

  it('0 turns the cap off', async () => {
    const r = makeCall({ maxMessagesPerSecond: 0 });
    await ready(r);
    text(r, startMsg());
    for (let i = 1; i <= 5000; i++) text(r, mediaMsg(i, frame(0xff)));
    expect(r.call.ended).toBe(false);
  });
});
