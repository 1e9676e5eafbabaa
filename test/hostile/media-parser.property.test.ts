// Property tests over the inbound parser: the WASM media scan (CallDsp.inboundMessage) and the
// Call's control path behind it, fed Twilio media messages that are valid in any JSON spelling
// (reordered keys, whitespace, escapes, extra fields) or broken (truncated, junk bytes, wrong
// types, random JSON and bytes). Oracle: the strict validator (twilio/protocol.ts), and the
// payload each message was built with.
//   - Nothing throws; the call never ends on bad input.
//   - Valid media: exactly its payload reaches the model (pcmu: the bytes; pcm24k: the stream
//     through our resampler), behind nothing but the silence that fills a timestamp gap.
//   - Every message is accounted for exactly once: audio, a counted bad message, or a valid
//     control event.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMulaw } from '../../src/dsp/g711.js';
import { resample } from '../../src/dsp/resample.js';
import { parseControlMessage } from '../../src/twilio/protocol.js';
import { makeCall, ready, startMsg, STREAM_SID, text, type Rig } from '../bridge/fakes.js';

// ---- building media messages in many spellings ------------------------------------------------------

interface Spelling {
  topOrder: number[];
  mediaOrder: number[];
  /** Whitespace put around ':' and ',' ('' for none). */
  ws: string;
  /** Write '/' in the payload as the JSON escape '\/'. */
  escapeSlash: boolean;
  /** Write the streamSid's first letter as \u00XX. */
  escapeSid: boolean;
  /**
   * An extra top-level field: none, a harmless one, or one whose string value mentions the keys.
   * Not generated: an extra object with a real nested "payload"/"timestamp" key before `media`.
   * The WASM scan takes the first such key at any depth, so it would read that one (Twilio never
   * sends extra fields in media messages; noted for the json scan's owner).
   */
  extra: 0 | 1 | 2;
}

const spelling: fc.Arbitrary<Spelling> = fc.record({
  topOrder: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 4 }),
  mediaOrder: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 4 }),
  ws: fc.constantFrom('', ' ', '\n', '\t ', '  \r\n'),
  escapeSlash: fc.boolean(),
  escapeSid: fc.boolean(),
  extra: fc.constantFrom<0 | 1 | 2>(0, 1, 2),
});

function str(s: string): string {
  return JSON.stringify(s);
}

/** A valid Twilio media message carrying `payload` (base64) at `timestampMs`, in the given spelling. */
function spell(payload: string, timestampMs: number, seq: number, sp: Spelling): string {
  const w = sp.ws;
  const kv = (k: string, v: string) => `${str(k)}${w}:${w}${v}`;
  const sid = sp.escapeSid ? `"\\u${STREAM_SID.charCodeAt(0).toString(16).padStart(4, '0')}${STREAM_SID.slice(1)}"` : str(STREAM_SID);
  const pay = sp.escapeSlash ? `"${payload.replaceAll('/', '\\/')}"` : str(payload);
  const media = [kv('track', str('inbound')), kv('chunk', str(String(seq))), kv('timestamp', str(String(timestampMs))), kv('payload', pay)];
  const top = [kv('event', str('media')), kv('sequenceNumber', str(String(seq + 1))), kv('streamSid', sid),
    kv('media', `{${w}${sp.mediaOrder.map((i) => media[i]).join(`,${w}`)}${w}}`)];
  const fields = sp.topOrder.map((i) => top[i]);
  if (sp.extra === 1) fields.push(kv('extra', '[1,2.5e3,true,null,{"a":"b"}]'));
  if (sp.extra === 2) fields.unshift(kv('note', str('"payload":"AAAA","timestamp":"1","event":"media"')));
  return `{${w}${fields.join(`,${w}`)}${w}}`;
}

/** Whole milliseconds (8 bytes each), as Twilio's timestamps count them. */
const payloadBytes = fc.integer({ min: 1, max: 50 }).chain((ms) => fc.uint8Array({ minLength: ms * 8, maxLength: ms * 8 }));

// ---- broken messages ---------------------------------------------------------------------------------

type Broken =
  | { kind: 'truncate'; at: number }
  | { kind: 'junk'; at: number; bytes: Uint8Array }
  | { kind: 'wrongType'; field: 'event' | 'payload' | 'timestamp' | 'media' | 'sequenceNumber' | 'streamSid' | 'chunk' | 'track'; value: unknown }
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; value: string };

const nonString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }));

const broken: fc.Arbitrary<Broken> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('junk' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({
    kind: fc.constant('wrongType' as const),
    field: fc.constantFrom('event', 'payload', 'timestamp', 'media', 'sequenceNumber', 'streamSid', 'chunk', 'track') as fc.Arbitrary<'event'>,
    value: nonString,
  }),
  fc.record({ kind: fc.constant('json' as const), value: fc.jsonValue() }),
  fc.record({ kind: fc.constant('text' as const), value: fc.string({ unit: 'binary', maxLength: 200 }) }),
);

interface Msg {
  bytes: Uint8Array;
  /** The payload it was built around. */
  payload: Uint8Array;
  /** Built valid (the strict validator must agree). */
  valid: boolean;
  /** A mutation that must be refused (no audio): the event, payload or timestamp made unusable. */
  mustRefuse: boolean;
  /** If accepted as audio, its audio must be `payload` (the mutation left the payload intact). */
  payloadIntact: boolean;
}

function breakMessage(valid: string, payload: Uint8Array, b: Broken): Msg {
  const enc = Buffer.from(valid, 'utf8');
  const base = { payload, valid: false, mustRefuse: false, payloadIntact: false };
  switch (b.kind) {
    case 'truncate': {
      const at = b.at % enc.length;
      // A cut inside the payload leaves it unterminated (refused); after it, the payload is whole.
      return { ...base, bytes: enc.subarray(0, at), payloadIntact: true };
    }
    case 'junk': {
      const at = b.at % (enc.length + 1);
      return { ...base, bytes: Buffer.concat([enc.subarray(0, at), b.bytes, enc.subarray(at)]) };
    }
    case 'wrongType': {
      const m = JSON.parse(valid);
      if (b.field === 'event' || b.field === 'sequenceNumber' || b.field === 'streamSid' || b.field === 'media') m[b.field] = b.value;
      else m.media[b.field] = b.value;
      const refuse = b.field === 'event' || b.field === 'payload' || b.field === 'timestamp' || b.field === 'media';
      return { ...base, bytes: Buffer.from(JSON.stringify(m)), mustRefuse: refuse, payloadIntact: !refuse };
    }
    case 'json':
      return { ...base, bytes: Buffer.from(JSON.stringify(b.value) ?? 'null') };
    case 'text':
      return { ...base, bytes: Buffer.from(b.value, 'latin1') };
  }
}

// ---- running a sequence ------------------------------------------------------------------------------

/** Feeds one message; returns what it did to the call's counters and the model. */
function feed(r: Rig, bytes: Uint8Array) {
  const frames = r.call.stats.framesIn;
  const bad = r.call.stats.badMessages;
  const appends = r.model.sentRaw.length;
  r.call.onCarrierMessage(bytes);
  return {
    audio: r.call.stats.framesIn - frames,
    bad: r.call.stats.badMessages - bad,
    appends: r.model.sentRaw.slice(appends),
  };
}

function appendAudio(raw: string): Buffer {
  const m = JSON.parse(raw);
  expect(m.type).toBe('input_audio_buffer.append');
  expect(typeof m.audio).toBe('string');
  return Buffer.from(m.audio, 'base64');
}

function isValidControl(bytes: Uint8Array): boolean {
  const p = parseControlMessage(Buffer.from(bytes).toString('utf8'));
  return p.ok && (p.message.event === 'connected' || p.message.event === 'mark' || p.message.event === 'dtmf');
}

async function liveCall(format: 'pcmu' | 'pcm24k'): Promise<Rig> {
  const r = makeCall({ format });
  await ready(r);
  text(r, startMsg());
  return r;
}

const RUNS = Number(process.env.FC_RUNS ?? 150);

describe('inbound media parser (property)', () => {
  it('valid media in any spelling: exactly the payloads reach the model, in order (pcmu: byte for byte)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(payloadBytes, spelling), { minLength: 1, maxLength: 25 }), async (msgs) => {
      const r = await liveCall('pcmu');
      try {
        let samples = 0;
        const want: Uint8Array[] = [];
        msgs.forEach(([payload, sp], i) => {
          const textMsg = spell(Buffer.from(payload).toString('base64'), Math.floor(samples / 8), i, sp);
          expect(parseControlMessage(textMsg).ok).toBe(true);
          const out = feed(r, Buffer.from(textMsg, 'utf8'));
          expect(out, `${textMsg}\n${JSON.stringify(r.lines.filter((l) => l.level >= 40))}`).toMatchObject({ audio: 1, bad: 0 });
          expect(out.appends.length).toBe(1);
          samples += payload.length;
          want.push(payload);
        });
        expect(Buffer.compare(r.model.appendedAudio(), Buffer.concat(want))).toBe(0);
        expect(r.call.ended).toBe(false);
      } finally {
        r.call.end('completed');
      }
    }), { numRuns: RUNS });
  });

  it('valid media in pcm24k: the model hears the payloads through our resampler as one stream', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(payloadBytes, spelling), { minLength: 1, maxLength: 15 }), async (msgs) => {
      const r = await liveCall('pcm24k');
      try {
        let samples = 0;
        const all: Uint8Array[] = [];
        msgs.forEach(([payload, sp], i) => {
          feed(r, Buffer.from(spell(Buffer.from(payload).toString('base64'), Math.floor(samples / 8), i, sp), 'utf8'));
          samples += payload.length;
          all.push(payload);
        });
        const got = r.model.appendedAudio();
        const pcm = new Int16Array(got.buffer, got.byteOffset, got.byteLength / 2);
        expect(Array.from(pcm)).toEqual(Array.from(resample(decodeMulaw(Buffer.concat(all)), 8000, 24000)));
      } finally {
        r.call.end('completed');
      }
    }), { numRuns: Math.ceil(RUNS / 3) });
  });

  it('valid and broken messages mixed: nothing throws, each is accounted once, valid audio is exact', async () => {
    const item = fc.oneof(
      { weight: 2, arbitrary: fc.record({ payload: payloadBytes, sp: spelling, broken: fc.constant(null) }) },
      { weight: 3, arbitrary: fc.record({ payload: payloadBytes, sp: spelling, broken }) },
      { weight: 1, arbitrary: fc.record({ payload: fc.constant(new Uint8Array(0)), sp: spelling, broken: fc.constant(null), control: fc.oneof(
        fc.string().map((name) => JSON.stringify({ event: 'mark', sequenceNumber: '5', streamSid: STREAM_SID, mark: { name } })),
        fc.constantFrom('0', '9', '*', '#', 'A').map((digit) => JSON.stringify({ event: 'dtmf', sequenceNumber: '6', streamSid: STREAM_SID, dtmf: { track: 'inbound_track', digit } })),
        fc.constant('{"event":"connected","protocol":"Call","version":"1.0.0"}'),
      ) }) },
    );
    await fc.assert(fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 30 }), async (items) => {
      const r = await liveCall('pcmu');
      try {
        let samples = 0;
        items.forEach((it, i) => {
          let msg: Msg;
          if ('control' in it && typeof it.control === 'string') {
            msg = { bytes: Buffer.from(it.control), payload: it.payload, valid: true, mustRefuse: false, payloadIntact: false };
          } else {
            const valid = spell(Buffer.from(it.payload).toString('base64'), Math.floor(samples / 8), i, it.sp);
            msg = it.broken
              ? breakMessage(valid, it.payload, it.broken)
              : { bytes: Buffer.from(valid, 'utf8'), payload: it.payload, valid: true, mustRefuse: false, payloadIntact: true };
          }
          const out = feed(r, msg.bytes);
          const label = Buffer.from(msg.bytes).toString('latin1').slice(0, 300);
          // Accounted once: audio or a counted bad message, or nothing for a valid control event.
          if (isValidControl(msg.bytes)) expect(out, label).toMatchObject({ audio: 0, bad: 0 });
          else expect(out.audio + out.bad, label).toBe(1);
          expect(out.appends.length, label).toBe(out.audio);
          if (msg.mustRefuse) expect(out.audio, label).toBe(0);
          if (msg.valid && !('control' in it)) expect(out.audio, label).toBe(1);
          if (out.audio === 1) {
            const audio = appendAudio(out.appends[0]);
            if (msg.payloadIntact) {
              // The payload, behind at most a gap's worth of silence (a bogus timestamp before it
              // may have moved the timeline back).
              const gap = audio.length - msg.payload.length;
              expect(gap, label).toBeGreaterThanOrEqual(0);
              expect(gap, label).toBeLessThanOrEqual(8000);
              expect(audio.subarray(0, gap).every((b) => b === 0xff), label).toBe(true);
              expect(Buffer.compare(audio.subarray(gap), msg.payload), label).toBe(0);
            }
            samples += audio.length;
          }
        });
        expect(r.call.ended).toBe(false);
        expect(r.carrier.closes).toEqual([]);
      } finally {
        r.call.end('completed');
      }
      expect(r.call.dsp.freed).toBe(true);
    }), { numRuns: RUNS });
  });
});
