// Barge-in with model events in unusual orders (cases the event property test found): the item
// the caller was hearing is the one truncated even when a newer item is already queued behind it,
// nothing cut plays later, and a barge-in before Twilio's `start` cannot break the call.
import { describe, expect, it } from 'vitest';
import { NOOP_METRICS } from '../../src/metrics.js';
import { frame, makeCall, mediaMsg, ready, startMsg, text, type Rig } from './fakes.js';

const LOUD = Uint8Array.from({ length: 160 }, (_, i) => (i & 1 ? 0x80 : 0x00));

/** Silence to settle the VAD's floor, then loud frames until the bridge barges in. */
function talk(r: Rig, seq: { n: number }): void {
  for (let i = 0; i < 10; i++) text(r, mediaMsg(seq.n++, frame(0xff)));
  for (let i = 0; i < 20 && r.call.stats.bargeIns === 0; i++) text(r, mediaMsg(seq.n++, LOUD));
  expect(r.call.stats.bargeIns).toBe(1);
}

function ticks(r: Rig, ms: number): void {
  for (let t = 0; t < ms; t += 10) r.call.tick((r.clock.t += 10));
}

/** Item A is 0x21 bytes, item B 0x22: which one Twilio got is in the bytes. */
function sentOf(r: Rig, code: number): number {
  return r.carrier.mediaBytes().filter((b) => b === code).length;
}

describe('barge-in and item order', () => {
  it('a new item queued behind the one playing: the playing item is truncated at what was heard; neither plays on', async () => {
    const r = makeCall();
    await ready(r);
    text(r, startMsg());
    r.model.event({ type: 'response.created', response: { id: 'r1' } });
    r.model.event({ type: 'response.output_item.added', response_id: 'r1', item: { id: 'A' } });
    r.model.delta('A', frame(0x21, 3200), 'r1'); // 400 ms
    r.model.event({ type: 'response.output_audio.done', response_id: 'r1', item_id: 'A' });
    r.model.event({ type: 'response.done', response: { id: 'r1', status: 'completed' } });
    // The next response starts arriving while A still plays.
    r.model.event({ type: 'response.created', response: { id: 'r2' } });
    r.model.event({ type: 'response.output_item.added', response_id: 'r2', item: { id: 'B' } });
    r.model.delta('B', frame(0x22, 1600), 'r2'); // 200 ms
    ticks(r, 100);
    const sentA = sentOf(r, 0x21) / 8;
    expect(sentA).toBeGreaterThan(0);
    expect(sentA).toBeLessThan(400);
    expect(sentOf(r, 0x22)).toBe(0);

    talk(r, { n: 1 });
    const truncs = r.model.events('conversation.item.truncate');
    expect(truncs.length).toBe(1);
    expect(truncs[0].item_id).toBe('A');
    const end = truncs[0].audio_end_ms as number;
    expect(end).toBeGreaterThanOrEqual(0);
    expect(end).toBeLessThanOrEqual(sentA);
    expect(r.model.events('response.cancel').length).toBe(1);
    expect(r.carrier.json().filter((m) => m.event === 'clear').length).toBe(1);

    // Late audio of either item never plays.
    const before = r.carrier.mediaBytes().length;
    r.model.delta('A', frame(0x21, 800), 'r1');
    r.model.delta('B', frame(0x22, 800), 'r2');
    ticks(r, 500);
    expect(r.carrier.mediaBytes().length).toBe(before);
  });

  it('the first delta of an item never announced, of a response already cancelled, is dropped', async () => {
    const r = makeCall();
    await ready(r);
    text(r, startMsg());
    r.model.event({ type: 'response.created', response: { id: 'r1' } });
    r.model.event({ type: 'input_audio_buffer.speech_started', audio_start_ms: 0, item_id: 'u' });
    expect(r.model.events('response.cancel').length).toBe(1);
    r.model.delta('X', frame(0x23, 800), 'r1');
    ticks(r, 300);
    expect(r.carrier.mediaBytes().length).toBe(0);
    // Another response's audio still plays.
    r.model.event({ type: 'response.created', response: { id: 'r2' } });
    r.model.delta('Y', frame(0x24, 800), 'r2');
    ticks(r, 300);
    expect(sentOf(r, 0x24)).toBeGreaterThan(0);
  });

  it('a barge-in before Twilio\'s start (greeting audio queued, no streamSid yet) sends no clear and keeps the call', async () => {
    const r = makeCall();
    await ready(r);
    r.model.event({ type: 'response.created', response: { id: 'r1' } });
    r.model.delta('A', frame(0x21, 1600), 'r1');
    talk(r, { n: 1 });
    expect(r.call.ended).toBe(false);
    expect(r.carrier.sent).toEqual([]);
    expect(r.model.events('response.cancel').length).toBe(1);
    text(r, startMsg());
    ticks(r, 300);
    expect(sentOf(r, 0x21)).toBe(0);
    expect(r.call.ended).toBe(false);
  });
});

describe('barge-in metrics', () => {
  it('records how much of audio_end_ms was estimated beyond what marks confirmed', async () => {
    const observed: number[] = [];
    const metrics = { ...NOOP_METRICS, truncationError: (ms: number) => observed.push(ms) };
    const r = makeCall({ metrics });
    await ready(r);
    text(r, startMsg());
    r.model.event({ type: 'response.created', response: { id: 'r1' } });
    r.model.delta('A', frame(0x21, 3200), 'r1'); // 400 ms
    ticks(r, 200);
    talk(r, { n: 1 });
    const end = r.model.events('conversation.item.truncate')[0].audio_end_ms as number;
    // No mark was echoed by the fake carrier: all of audio_end_ms is the pacer's estimate.
    expect(observed).toEqual([end]);
  });
});

describe('barge-in between real-time deltas', () => {
  it('clears Twilio when the bot played moments ago, though our estimate says its buffer just ran dry', async () => {
    const r = makeCall();
    await ready(r);
    text(r, startMsg());
    r.model.event({ type: 'response.created', response: { id: 'r1' } });
    // Silence first, so the VAD's floor settles (as in talk()), while no bot audio is out.
    const seq = { n: 1 };
    for (let i = 0; i < 10; i++) text(r, mediaMsg(seq.n++, frame(0xff)));
    r.model.delta('A', frame(0x21, 160), 'r1'); // one 20 ms frame, sent at once
    ticks(r, 30); // the estimate says Twilio ran dry 10 ms ago; the next delta is late
    for (let i = 0; i < 20 && r.call.stats.bargeIns === 0; i++) text(r, mediaMsg(seq.n++, LOUD));
    expect(r.call.stats.bargeIns).toBe(1);
    expect(r.carrier.json().filter((m) => m.event === 'clear').length).toBe(1);
    expect(r.model.events('response.cancel').length).toBe(1);
  });
});
