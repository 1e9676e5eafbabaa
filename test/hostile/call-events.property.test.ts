// Property test over a Call's event handling: random interleavings of Twilio events (media loud
// or silent, marks, garbage, stop) and model events (responses, items, audio deltas, also for
// unknown items and out of order, speech events, errors, a dropped socket), pacer ticks on a
// hand-driven clock and either socket backing up. In pcmu every item's audio is one distinct byte
// value, so each byte sent to Twilio says which item it belongs to. Invariants:
//   - no handler throws;
//   - after a clear, no audio of an item that clear cut (the truncated item, the one playing,
//     any item of a cancelled response) is ever sent;
//   - every truncate's audio_end_ms is a whole number in [0, audio of that item sent];
//   - the call ends exactly once, frees its DSP state, and sends nothing either way afterwards.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frame, makeCall, mediaMsg, ready, startMsg, stopMsg, STREAM_SID, text, type Rig } from '../bridge/fakes.js';

// Four item ids, reused at random (a hostile model): no more than the bridge remembers as cut.
// Each belongs to one response (r0 has two, r3 none), so no event contradicts another about
// ownership; order, repetition and missing announcements are all free.
const ITEMS = ['i0', 'i1', 'i2', 'i3'];
const OWNER: Record<string, string> = { i0: 'r0', i1: 'r0', i2: 'r1', i3: 'r2' };
const RESPONSES = ['r0', 'r1', 'r2', 'r3'];
/** Item k's audio is all byte 0x10 + k (never 0xff, the inbound silence). */
const code = (item: string) => 0x10 + ITEMS.indexOf(item);

type Op =
  | { op: 'media'; loud: boolean; n: number }
  | { op: 'mark'; pick: number; name: string }
  | { op: 'garbage'; text: string }
  | { op: 'binary' }
  | { op: 'stop' }
  | { op: 'start' }
  | { op: 'tick'; ms: number }
  | { op: 'carrierBuffered'; bytes: number }
  | { op: 'modelBuffered'; bytes: number }
  | { op: 'created'; r: string }
  | { op: 'itemAdded'; r: string; item: string }
  | { op: 'delta'; r: string; item: string; ms: number; typeLast: boolean }
  | { op: 'audioDone'; r: string; item: string }
  | { op: 'done'; r: string | undefined; status: string }
  | { op: 'speechStarted' }
  | { op: 'speechStopped' }
  | { op: 'error'; code: string }
  | { op: 'modelEvent'; ev: Record<string, unknown> }
  | { op: 'modelClose'; code: number };

const response = fc.constantFrom(...RESPONSES);
const item = fc.constantFrom(...ITEMS);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('media' as const), loud: fc.boolean(), n: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('mark' as const), pick: fc.nat(), name: fc.string({ maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('garbage' as const), text: fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue().map((v) => JSON.stringify(v) ?? '')) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'binary' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'stop' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'start' as const }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('carrierBuffered' as const), bytes: fc.constantFrom(0, 0, 1 << 20) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('modelBuffered' as const), bytes: fc.constantFrom(0, 0, 4 << 20) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('created' as const), r: response }) },
  { weight: 3, arbitrary: item.map((i) => ({ op: 'itemAdded' as const, r: OWNER[i], item: i })) },
  { weight: 8, arbitrary: fc.record({ item, ms: fc.integer({ min: 1, max: 600 }), typeLast: fc.boolean() }).map((d) => ({ op: 'delta' as const, r: OWNER[d.item], ...d })) },
  { weight: 2, arbitrary: item.map((i) => ({ op: 'audioDone' as const, r: OWNER[i], item: i })) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('done' as const), r: fc.option(response, { nil: undefined }), status: fc.constantFrom('completed', 'cancelled', 'failed', 'incomplete', 'weird') }) },
  { weight: 2, arbitrary: fc.constant({ op: 'speechStarted' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'speechStopped' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('error' as const), code: fc.constantFrom('rate_limit_exceeded', 'server_error', 'response_cancel_not_active', 'session_expired', 'invalid_value', '') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('modelEvent' as const), ev: fc.oneof(
    fc.constant({ type: 'response.done' }),
    fc.constant({ type: 'response.created' }),
    fc.constant({ type: 'response.output_item.added' }),
    fc.constant({ type: 'response.output_item.added', response_id: 'r0', item: null }),
    fc.constant({ type: 'error' }),
    fc.constant({ type: 'error', error: null }),
    fc.constant({ type: 'rate_limits.updated', rate_limits: [] }),
    fc.constant({ type: 'conversation.item.truncated', item_id: 'i0' }),
    fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue(), { maxKeys: 3 }).map((d) => ({ ...d, type: 'something.new' })),
  ) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('modelClose' as const), code: fc.constantFrom(1000, 1006, 1011) }) },
);

/** Loud inbound audio (a full-scale 4 kHz square wave) or silence, 20 ms. */
const LOUD = Uint8Array.from({ length: 160 }, (_, i) => (i & 1 ? 0x80 : 0x00));
const SILENT = frame(0xff);

function delta(itemId: string, responseId: string, ms: number, typeLast: boolean): Buffer {
  const fields = {
    event_id: 'ev', response_id: responseId, item_id: itemId, output_index: 0, content_index: 0,
    delta: Buffer.from(frame(code(itemId), ms * 8)).toString('base64'),
  };
  const ev = typeLast ? { ...fields, type: 'response.output_audio.delta' } : { type: 'response.output_audio.delta', ...fields };
  return Buffer.from(JSON.stringify(ev));
}

/** What Twilio got, item by item: ms of each item's audio sent, and what is banned after a clear. */
class TwilioView {
  sentMs = new Map<string, number>();
  banned = new Set<string>();
  lastItem: string | undefined;
  seen = 0;
  marks: string[] = [];
}

/** How often the interesting paths were taken (printed with FC_STATS=1, to check the generator reaches them). */
export const coverage = { runs: 0, clears: 0, truncates: 0, cancels: 0, bannedChecks: 0, framesOut: 0, ended: 0 };

function run(r: Rig, ops: Op[]): void {
  const view = new TwilioView();
  let seq = 1;
  // Our mirror of which response the bridge treats as active, and each response's items.
  let active: string | undefined;
  const itemsOf = new Map<string, Set<string>>();
  const seenEvents = { cancels: 0, truncates: 0 };

  /** Checks everything the call sent since the last look. */
  const inspect = () => {
    const sent = r.carrier.sent;
    for (; view.seen < sent.length; view.seen++) {
      const m = JSON.parse(sent[view.seen]) as { event: string; media?: { payload: string }; mark?: { name: string } };
      if (m.event !== 'media' && m.event !== 'mark' && m.event !== 'clear') expect.fail(`sent ${sent[view.seen]}`);
      if (m.event === 'mark') view.marks.push(m.mark!.name);
      if (m.event === 'clear') {
        coverage.clears++;
        // Everything playing or queued when the clear went is cut.
        if (view.lastItem) view.banned.add(view.lastItem);
      }
      if (m.event !== 'media') continue;
      const bytes = Buffer.from(m.media!.payload, 'base64');
      if (bytes.length === 0) expect.fail('an empty media message');
      // Runs of one item at a time (expect() per byte would dominate the run time).
      for (let i = 0; i < bytes.length;) {
        let j = i + 1;
        while (j < bytes.length && bytes[j] === bytes[i]) j++;
        const it = ITEMS[bytes[i] - 0x10];
        if (it === undefined) expect.fail(`byte ${bytes[i]} belongs to no item`);
        if (view.banned.size > 0) coverage.bannedChecks++;
        if (view.banned.has(it)) expect.fail(`audio of ${it} sent after a clear cut it`);
        view.lastItem = it;
        view.sentMs.set(it, (view.sentMs.get(it) ?? 0) + (j - i) / 8);
        i = j;
      }
    }
    const cancels = r.model.events('response.cancel').length;
    if (cancels > seenEvents.cancels) {
      seenEvents.cancels = cancels;
      coverage.cancels++;
      // Every item of the response that was active is cut, announced now or later.
      if (active !== undefined) for (const it of itemsOf.get(active) ?? []) view.banned.add(it);
      if (active !== undefined) view.banned.add(`resp:${active}`);
      active = undefined;
    }
    const truncs = r.model.events('conversation.item.truncate');
    for (; seenEvents.truncates < truncs.length; seenEvents.truncates++) {
      const t = truncs[seenEvents.truncates];
      const id = t.item_id as string;
      const end = t.audio_end_ms as number;
      expect(Number.isInteger(end)).toBe(true);
      expect(end).toBeGreaterThanOrEqual(0);
      expect(end).toBeLessThanOrEqual(Math.round(view.sentMs.get(id) ?? 0));
      expect(t.content_index).toBe(0);
      view.banned.add(id);
      coverage.truncates++;
    }
  };

  for (const o of ops) {
    switch (o.op) {
      case 'media':
        for (let i = 0; i < o.n; i++) text(r, mediaMsg(seq++, o.loud ? LOUD : SILENT));
        break;
      case 'mark': {
        const name = view.marks.length > 0 && o.pick % 3 !== 0 ? view.marks[o.pick % view.marks.length] : o.name;
        text(r, JSON.stringify({ event: 'mark', sequenceNumber: String(seq++), streamSid: STREAM_SID, mark: { name } }));
        break;
      }
      case 'garbage':
        text(r, o.text);
        break;
      case 'binary':
        r.call.rejectBinary();
        break;
      case 'stop':
        text(r, stopMsg());
        break;
      case 'start':
        text(r, startMsg());
        break;
      case 'tick':
        r.clock.t += o.ms;
        r.call.tick(r.clock.t);
        break;
      case 'carrierBuffered':
        r.carrier.buffered = o.bytes;
        break;
      case 'modelBuffered':
        r.model.buffered = o.bytes;
        break;
      case 'created':
        active = o.r;
        r.model.event({ type: 'response.created', response: { id: o.r, status: 'in_progress' } });
        break;
      case 'itemAdded':
        if (!itemsOf.has(o.r)) itemsOf.set(o.r, new Set());
        itemsOf.get(o.r)!.add(o.item);
        // An item announced for a response already cancelled is cut too.
        if (view.banned.has(`resp:${o.r}`)) view.banned.add(o.item);
        r.model.event({ type: 'response.output_item.added', response_id: o.r, output_index: 0, item: { id: o.item, type: 'message' } });
        break;
      case 'delta':
        if (view.banned.has(`resp:${o.r}`)) view.banned.add(o.item);
        r.model.onAudioDelta(delta(o.item, o.r, o.ms, o.typeLast));
        break;
      case 'audioDone':
        r.model.event({ type: 'response.output_audio.done', response_id: o.r, item_id: o.item });
        break;
      case 'done':
        if (o.r === active || o.r === undefined) active = undefined;
        r.model.event({ type: 'response.done', response: o.r === undefined ? { status: o.status } : { id: o.r, status: o.status } });
        break;
      case 'speechStarted':
        r.model.event({ type: 'input_audio_buffer.speech_started', audio_start_ms: 100, item_id: 'u1' });
        break;
      case 'speechStopped':
        r.model.event({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: 200, item_id: 'u1' });
        break;
      case 'error':
        r.model.event({ type: 'error', error: { type: 'invalid_request_error', code: o.code || null, message: 'x' } });
        break;
      case 'modelEvent':
        // The bridge takes a response.created without a response as an active response '?',
        // and a response.done without an id as the end of the active one.
        if (o.ev.type === 'response.created') active = '?';
        if (o.ev.type === 'response.done') active = undefined;
        r.model.event(o.ev);
        break;
      case 'modelClose':
        r.model.onClose(o.code, '');
        break;
    }
    inspect();
  }
}

const RUNS = Number(process.env.FC_RUNS ?? 1000);

describe('Call event handling (property)', () => {
  it('random Twilio and model events: no throw, nothing cut is heard, truncates in range, one end, state freed', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 80 }), fc.boolean(), async (ops, startFirst) => {
      const r = makeCall({ queueSeconds: 1 });
      await ready(r);
      if (startFirst) text(r, startMsg());
      run(r, ops);
      // However it went, the call ends now if it has not, exactly once.
      const endedBefore = r.call.ended;
      coverage.runs++;
      coverage.framesOut += r.call.stats.framesOut;
      if (endedBefore) coverage.ended++;
      r.call.end('completed');
      expect(r.ends.length).toBe(1);
      expect(r.call.endings).toBe(1);
      expect(r.call.dsp.freed).toBe(true);
      if (!endedBefore) expect(r.carrier.closes.length + (r.call.outcome === 'hangup' ? 1 : 0)).toBe(1);
      // Nothing is sent either way after the end, whatever arrives.
      const toTwilio = r.carrier.sent.length;
      const toModel = r.model.sentRaw.length + r.model.sentEvents.length;
      run(r, [{ op: 'media', loud: true, n: 2 }, { op: 'created', r: 'r9' as never }, { op: 'delta', r: 'r0', item: 'i0', ms: 100, typeLast: false },
        { op: 'tick', ms: 100 }, { op: 'stop' }, { op: 'modelClose', code: 1006 }]);
      r.call.carrierClosed(1006, '');
      expect(r.carrier.sent.length).toBe(toTwilio);
      expect(r.model.sentRaw.length + r.model.sentEvents.length).toBe(toModel);
      expect(r.ends.length).toBe(1);
    }), { numRuns: RUNS });
    if (process.env.FC_STATS) console.log('coverage', coverage);
    // The generator must reach the paths the invariants are about.
    expect(coverage.clears).toBeGreaterThan(0);
    expect(coverage.truncates).toBeGreaterThan(0);
    expect(coverage.bannedChecks).toBeGreaterThan(0);
  }, 120_000);
});
