// The whole-frame call kernels (assembly/call.ts via src/dsp/call.ts) against references built
// from the separate pieces: mu-law codec, resamplers run as their own streams, base64, VAD.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CallDsp,
  DEFAULT_VAD,
  DELTA_DROPPED,
  DELTA_NEW_ITEM,
  ERR_BASE64,
  ERR_NEEDS_PARSE,
  ERR_NOT_MEDIA,
  ERR_TOO_LARGE,
  FRAME_BYTES,
  VAD_ONSET,
  type CallDspOptions,
  type VadParams,
} from '../../src/dsp/call.js';
import { decodeMulaw, encodeMulaw } from '../../src/dsp/g711.js';
import { loadDsp } from '../../src/dsp/wasm.js';
import { Vad } from '../../src/dsp/vad.js';

interface RawExports {
  memory: WebAssembly.Memory;
  dsp_alloc(n: number): number;
  dsp_free(p: number): void;
  resampler_new(inRate: number, outRate: number): number;
  resampler_free(p: number): void;
  resampler_max_out(p: number, n: number): number;
  resampler_process(p: number, src: number, n: number, dst: number): number;
  vad_new(): number;
  vad_free(p: number): void;
  vad_set_params(p: number, thr: number, minMs: number, hangMs: number, botThr: number, botMinMs: number): void;
  vad_process(p: number, pcm: number, n: number, bot: number): number;
}
const raw = loadDsp() as unknown as RawExports;

// ---- references -----------------------------------------------------------------------------

/** One-shot resampling with its own resampler instance (bit-equal to streaming by design). */
function resampleRef(inRate: number, outRate: number, pcm: Int16Array): Int16Array {
  const r = raw.resampler_new(inRate, outRate);
  const outN = raw.resampler_max_out(r, pcm.length);
  const src = raw.dsp_alloc(pcm.length * 2 + 16);
  const dst = raw.dsp_alloc(outN * 2 + 16);
  new Int16Array(raw.memory.buffer, src, pcm.length).set(pcm);
  const m = raw.resampler_process(r, src, pcm.length, dst);
  const out = new Int16Array(raw.memory.buffer, dst, m).slice();
  raw.dsp_free(src);
  raw.dsp_free(dst);
  raw.resampler_free(r);
  return out;
}

/** Per-frame VAD flags of a separate VAD instance fed the same 8 kHz PCM. */
function vadRef(pcm: Int16Array, frame: number, params: VadParams | null, bot: boolean): number[] {
  const v = raw.vad_new();
  if (params) {
    raw.vad_set_params(v, params.thresholdDb, params.minSpeechMs, params.hangoverMs, params.botThresholdDb,
      params.botMinSpeechMs);
  }
  const buf = raw.dsp_alloc(frame * 2);
  const flags: number[] = [];
  for (let off = 0; off < pcm.length; off += frame) {
    new Int16Array(raw.memory.buffer, buf, frame).set(pcm.subarray(off, off + frame));
    flags.push(raw.vad_process(v, buf, frame, bot ? 1 : 0));
  }
  raw.dsp_free(buf);
  raw.vad_free(v);
  return flags;
}

function pcmBytes(pcm: Int16Array): Buffer {
  return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
}

function bytesToPcm(b: Buffer): Int16Array {
  const out = new Int16Array(b.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = b.readInt16LE(2 * i);
  return out;
}

/** Deterministic test signal: two tones plus PRNG noise, int16. */
function signal(n: number, rate: number, seed = 1, amp = 6000): Int16Array {
  let s = seed >>> 0;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const noise = ((s >>> 16) / 65536 - 0.5) * amp * 0.3;
    const t = i / rate;
    out[i] = Math.round(amp * Math.sin(2 * Math.PI * 440 * t) + amp * 0.5 * Math.sin(2 * Math.PI * 1730 * t + 1) + noise);
  }
  return out;
}

/** Noise of a given RMS-ish amplitude, int16. */
function noise(n: number, amp: number, seed: number): Int16Array {
  let s = seed >>> 0;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.round(((s >>> 8) / 16777216 - 0.5) * 2 * amp);
  }
  return out;
}

// ---- message builders (the exact shapes of PROTOCOLS.md) --------------------------------------

const SID = 'MZ0123456789abcdef0123456789abcdef';
let seq = 1;

function mediaJson(payloadB64: string, ts: number | string, sid = SID): string {
  seq++;
  return `{"event":"media","sequenceNumber":"${seq}","streamSid":"${sid}","media":{"track":"inbound","chunk":"${seq - 1}",` +
    `"timestamp":"${ts}","payload":"${payloadB64}"}}`;
}
const enc = (s: string) => new TextEncoder().encode(s);
const media = (mulaw: Uint8Array, ts: number | string) => enc(mediaJson(Buffer.from(mulaw).toString('base64'), ts));

function deltaJson(b64: string, itemId = 'item_A'): string {
  return `{"type":"response.output_audio.delta","event_id":"event_${++seq}","response_id":"resp_1",` +
    `"item_id":"${itemId}","output_index":0,"content_index":0,"delta":"${b64}"}`;
}
const delta = (bytes: Uint8Array, itemId = 'item_A') => enc(deltaJson(Buffer.from(bytes).toString('base64'), itemId));

// ---- call handles, freed after each test ------------------------------------------------------

const live: CallDsp[] = [];
function newCall(opts: CallDspOptions, sid: string | null = SID): CallDsp {
  const c = new CallDsp(opts);
  live.push(c);
  if (sid !== null) expect(c.setStreamSid(sid)).toBe(true);
  return c;
}
afterEach(() => {
  for (const c of live) c.free();
  live.length = 0;
});

/** The audio of the last append message, parsed strictly as JSON. */
function appendAudio(c: CallDsp): Buffer {
  const text = Buffer.from(c.appendMessage()).toString('utf8');
  const msg = JSON.parse(text) as Record<string, unknown>;
  expect(Object.keys(msg)).toEqual(['type', 'audio']);
  expect(msg.type).toBe('input_audio_buffer.append');
  expect(typeof msg.audio).toBe('string');
  const audio = Buffer.from(msg.audio as string, 'base64');
  expect(audio.toString('base64')).toBe(msg.audio); // canonical, padded
  return audio;
}

/** Drains every queued frame (full frames, then the partial tail) and returns the mu-law bytes. */
function drain(c: CallDsp, sid = SID): Buffer {
  const parts: Buffer[] = [];
  for (;;) {
    let f = c.nextFrame(false);
    if (!f) f = c.nextFrame(true);
    if (!f) break;
    const msg = JSON.parse(Buffer.from(f).toString('utf8'));
    expect(msg).toEqual({ event: 'media', streamSid: sid, media: { payload: expect.any(String) } });
    const b = Buffer.from(msg.media.payload, 'base64');
    expect(b.length).toBe(c.lastFrameBytes());
    parts.push(b);
  }
  return Buffer.concat(parts);
}

// ==============================================================================================

describe('inbound: Twilio media -> model append', () => {
  const mulaw = encodeMulaw(signal(8000 * 3, 8000, 7)); // 3 s, 150 frames

  it('pcm24k: frame by frame equals mu-law decode -> 8k->24k resampler as one separate stream', () => {
    const c = newCall({ format: 'pcm24k' });
    const got: Int16Array[] = [];
    for (let k = 0; k < mulaw.length / FRAME_BYTES; k++) {
      const code = c.inboundMessage(media(mulaw.subarray(k * 160, k * 160 + 160), 52 + 20 * k), false);
      expect(code).toBeGreaterThanOrEqual(0);
      const pcm = bytesToPcm(appendAudio(c));
      expect(pcm.length).toBe(480);
      got.push(pcm);
    }
    const all = new Int16Array(got.reduce((n, a) => n + a.length, 0));
    let o = 0;
    for (const a of got) { all.set(a, o); o += a.length; }
    const ref = resampleRef(8000, 24000, decodeMulaw(mulaw));
    expect(all.length).toBe(ref.length);
    expect(pcmBytes(all).equals(pcmBytes(ref))).toBe(true);
    expect(c.gapMs()).toBe(0);
  });

  it('pcmu: the append audio is exactly the mu-law bytes', () => {
    const c = newCall({ format: 'pcmu' });
    for (let k = 0; k < 20; k++) {
      const frame = mulaw.subarray(k * 160, k * 160 + 160);
      expect(c.inboundMessage(media(frame, 52 + 20 * k), false)).toBeGreaterThanOrEqual(0);
      expect(appendAudio(c).equals(Buffer.from(frame))).toBe(true);
    }
  });

  it('control messages between media messages consume nothing (stream state carries over)', () => {
    const c = newCall({ format: 'pcm24k' });
    const out: Buffer[] = [];
    for (let k = 0; k < 25; k++) {
      expect(c.inboundMessage(enc('{"event":"mark","sequenceNumber":"9","streamSid":"MZ1","mark":{"name":"x"}}'), false))
        .toBe(ERR_NOT_MEDIA);
      expect(c.appendMessage().length).toBe(0);
      expect(c.inboundMessage(media(mulaw.subarray(k * 160, k * 160 + 160), 52 + 20 * k), false)).toBeGreaterThanOrEqual(0);
      out.push(appendAudio(c));
    }
    const ref = resampleRef(8000, 24000, decodeMulaw(mulaw.subarray(0, 25 * 160)));
    expect(Buffer.concat(out).equals(pcmBytes(ref))).toBe(true);
  });
});

describe('inbound: timestamp gaps', () => {
  const frame = (k: number) => new Uint8Array(160).fill(0x10 + k);

  it('fills a gap with mu-law silence of the right length; the first timestamp is not 0', () => {
    const c = newCall({ format: 'pcmu' });
    expect(c.inboundMessage(media(frame(0), 52), false)).toBeGreaterThanOrEqual(0);
    expect(appendAudio(c).equals(Buffer.from(frame(0)))).toBe(true); // no silence for 0..52
    expect(c.inboundMessage(media(frame(1), 112), false)).toBeGreaterThanOrEqual(0);
    // 52 + 20 = 72 expected, 112 arrived: 40 ms = 320 bytes of 0xFF, then the payload
    const a = appendAudio(c);
    expect(a.length).toBe(320 + 160);
    expect(a.subarray(0, 320).every((b) => b === 0xff)).toBe(true);
    expect(a.subarray(320).equals(Buffer.from(frame(1)))).toBe(true);
    expect(c.gapMs()).toBe(40);
    expect(c.inboundMessage(media(frame(2), 132), false)).toBeGreaterThanOrEqual(0);
    expect(appendAudio(c).length).toBe(160);
    expect(c.gapMs()).toBe(40);
  });

  it('caps the silence at 1 s per message and counts what it inserted', () => {
    const c = newCall({ format: 'pcmu' });
    c.inboundMessage(media(frame(0), 1000), false);
    c.inboundMessage(media(frame(1), 1000 + 20 + 5000), false);
    const a = appendAudio(c);
    expect(a.length).toBe(8000 + 160);
    expect(a.subarray(0, 8000).every((b) => b === 0xff)).toBe(true);
    expect(c.gapMs()).toBe(1000);
    // the timeline resumes at the late message: no second gap
    c.inboundMessage(media(frame(2), 1000 + 20 + 5000 + 20), false);
    expect(appendAudio(c).length).toBe(160);
    c.inboundMessage(media(frame(3), 1000 + 20 + 5000 + 40 + 60), false);
    expect(appendAudio(c).length).toBe(480 + 160);
    expect(c.gapMs()).toBe(1060);
  });

  it('duplicate and backwards timestamps insert no silence, before or after them', () => {
    const c = newCall({ format: 'pcmu' });
    const lens: number[] = [];
    for (const ts of [52, 72, 92, 92, 72, 112, 132, 112, 152]) {
      expect(c.inboundMessage(media(frame(0), ts), false)).toBeGreaterThanOrEqual(0);
      lens.push(appendAudio(c).length);
    }
    expect(lens).toEqual([160, 160, 160, 160, 160, 160, 160, 160, 160]);
    expect(c.gapMs()).toBe(0);
  });

  it('a jump back of more than 1 s starts a new timeline (one bogus timestamp does not end gap filling)', () => {
    const c = newCall({ format: 'pcmu' });
    const lens: number[] = [];
    for (const ts of [100000, 900000, 100020, 100040, 100100]) {
      c.inboundMessage(media(frame(0), ts), false);
      lens.push(appendAudio(c).length);
    }
    expect(lens).toEqual([160, 8000 + 160, 160, 160, 320 + 160]);
    expect(c.gapMs()).toBe(1040);
  });

  it('a message without a usable timestamp advances the timeline by its audio', () => {
    const c = newCall({ format: 'pcmu' });
    const b64 = Buffer.from(frame(0)).toString('base64');
    expect(c.inboundPayload(b64, 52, false)).toBeGreaterThanOrEqual(0);
    expect(c.inboundPayload(b64, NaN, false)).toBeGreaterThanOrEqual(0);
    expect(appendAudio(c).length).toBe(160);
    expect(c.inboundPayload(b64, -1, false)).toBeGreaterThanOrEqual(0);
    expect(c.inboundPayload(b64, 112, false)).toBeGreaterThanOrEqual(0);
    expect(appendAudio(c).length).toBe(160);
    expect(c.gapMs()).toBe(0);
  });

  it('pcm24k: the gap silence goes through the same resampler stream', () => {
    const c = newCall({ format: 'pcm24k' });
    const mulaw = encodeMulaw(signal(800, 8000, 3));
    const out: Buffer[] = [];
    c.inboundMessage(media(mulaw.subarray(0, 160), 52), false);
    out.push(appendAudio(c));
    c.inboundMessage(media(mulaw.subarray(160, 320), 112), false);
    out.push(appendAudio(c));
    const ref = resampleRef(8000, 24000, decodeMulaw(Uint8Array.from([
      ...mulaw.subarray(0, 160), ...new Uint8Array(320).fill(0xff), ...mulaw.subarray(160, 320),
    ])));
    expect(Buffer.concat(out).equals(pcmBytes(ref))).toBe(true);
  });
});

describe('inbound: fallbacks and bad input', () => {
  it('an escaped payload asks for the parse path, and inboundPayload then gives the same result', () => {
    const bytes = new Uint8Array(160).fill(0xff); // base64 "////..."
    const b64 = Buffer.from(bytes).toString('base64');
    expect(b64).toContain('/');
    const escaped = enc(mediaJson(b64.replaceAll('/', '\\/'), 52));
    const a = newCall({ format: 'pcm24k' });
    const b = newCall({ format: 'pcm24k' });
    expect(a.inboundMessage(escaped, false)).toBe(ERR_NEEDS_PARSE);
    const parsed = JSON.parse(Buffer.from(escaped).toString());
    expect(a.inboundPayload(parsed.media.payload, Number(parsed.media.timestamp), false)).toBeGreaterThanOrEqual(0);
    const viaParse = appendAudio(a);
    expect(b.inboundMessage(media(bytes, 52), false)).toBeGreaterThanOrEqual(0);
    expect(viaParse.equals(appendAudio(b))).toBe(true);
  });

  it('invalid base64 -> ERR_BASE64, nothing consumed', () => {
    const c = newCall({ format: 'pcmu' });
    for (const bad of ['!!!!', 'AAA', 'AAAAA===', 'AA=A', 'A B=', 'AB==AAAA']) {
      expect(c.inboundMessage(enc(mediaJson(bad, 52)), false)).toBe(ERR_BASE64);
      expect(c.inboundPayload(bad, 52, false)).toBe(ERR_BASE64);
    }
    expect(c.gapMs()).toBe(0);
    c.inboundMessage(media(new Uint8Array(160), 52), false);
    expect(appendAudio(c).length).toBe(160);
  });

  it('the largest payload after the largest gap fits the buffers (pcm24k) and matches the reference', () => {
    const c = newCall({ format: 'pcm24k' });
    const big = encodeMulaw(signal(8001, 8000, 13)); // 10668 base64 chars: the kernel's limit
    const first = encodeMulaw(signal(160, 8000, 14));
    c.inboundMessage(media(first, 52), false);
    const a = appendAudio(c);
    expect(c.inboundMessage(media(big, 52 + 20 + 1500), false)).toBeGreaterThanOrEqual(0);
    const b = appendAudio(c);
    const ref = resampleRef(8000, 24000, decodeMulaw(Uint8Array.from([...first, ...new Uint8Array(8000).fill(0xff), ...big])));
    expect(Buffer.concat([a, b]).equals(pcmBytes(ref))).toBe(true);
    expect(c.inboundMessage(media(new Uint8Array(8004), 9000), false)).toBe(ERR_TOO_LARGE);
    expect(c.inboundMessage(new Uint8Array(600 * 1024), false)).toBe(ERR_TOO_LARGE);
  });

  it('a non-ASCII payload handed to the parse path is refused, not folded onto base64 characters', () => {
    const c = newCall({ format: 'pcmu' });
    // U+0141 and U+0142 have the low bytes of 'A' and 'B'
    expect(c.inboundPayload('\u0141\u0141\u0142\u0142', 52, false)).toBe(ERR_BASE64);
    expect(c.outboundAudio('\u0141\u0141\u0142\u0142')).toBe(ERR_BASE64);
    expect(c.queuedBytes()).toBe(0);
  });

  it('non-media events -> ERR_NOT_MEDIA, including a start whose customParameters look like media', () => {
    const c = newCall({ format: 'pcm24k' });
    const msgs = [
      '{"event":"connected","protocol":"Call","version":"1.0.0"}',
      '{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1","streamSid":"MZ1",' +
        '"callSid":"CA1","tracks":["inbound"],"customParameters":{"tenant":"\\"payload\\":\\"AAAA\\"","payload":"AAAA",' +
        '"timestamp":"52","event":"media"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}',
      '{"event":"dtmf","sequenceNumber":"9","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"1"}}',
      '{"event":"mark","sequenceNumber":"103","streamSid":"MZ1","mark":{"name":"\\"payload\\":\\"AAAA\\""}}',
      '{"event":"stop","sequenceNumber":"250","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}',
      '{"sequenceNumber":"2","media":{"timestamp":"52","payload":"AAAA"}}', // no event at all
      '{"event":"mediax","media":{"timestamp":"52","payload":"AAAA"}}',
    ];
    for (const m of msgs) {
      JSON.parse(m);
      expect(c.inboundMessage(enc(m), false), m).toBe(ERR_NOT_MEDIA);
      expect(c.appendMessage().length).toBe(0);
    }
  });

  it('truncated messages and random bytes never throw and never yield a partial payload', () => {
    const c = newCall({ format: 'pcm24k' });
    const full = media(encodeMulaw(signal(160, 8000, 9)), 52);
    const payloadEnd = Buffer.from(full).lastIndexOf('"}}');
    for (let n = 0; n <= full.length; n++) {
      const code = c.inboundMessage(full.subarray(0, n), false);
      if (n <= payloadEnd) expect(code, `prefix ${n}`).toBeLessThan(0);
      else expect(code, `prefix ${n}`).toBeGreaterThanOrEqual(0);
    }
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const code = c.inboundMessage(bytes, fc.sample(fc.boolean(), 1)[0]);
      return Number.isInteger(code);
    }), { numRuns: 300 });
    fc.assert(fc.property(fc.string({ maxLength: 300 }), fc.integer({ min: -5, max: 400 }), (s, cut) => {
      const m = enc(mediaJson(s, 52));
      return Number.isInteger(c.inboundMessage(m.subarray(0, Math.max(0, Math.min(m.length, cut))), false));
    }), { numRuns: 300 });
  });
});

// ==============================================================================================

describe('outbound: model delta -> mu-law queue -> Twilio frames', () => {
  const pcm24 = signal(24000 * 2, 24000, 11); // 2 s
  const bytes24 = new Uint8Array(pcmBytes(pcm24));
  const refMulaw = Buffer.from(encodeMulaw(resampleRef(24000, 8000, pcm24)));

  function feed(c: CallDsp, bytes: Uint8Array, cuts: number[], itemId = 'item_A'): number[] {
    const codes: number[] = [];
    let prev = 0;
    for (const cut of [...cuts, bytes.length]) {
      codes.push(c.outboundMessage(delta(bytes.subarray(prev, cut), itemId)));
      prev = cut;
    }
    return codes;
  }

  it('even 20 ms deltas equal the 24k->8k resampler + mu-law encoder over the whole audio', () => {
    const c = newCall({ format: 'pcm24k' });
    const cuts: number[] = [];
    for (let o = 960; o < bytes24.length; o += 960) cuts.push(o);
    const codes = feed(c, bytes24, cuts);
    expect(codes[0] & DELTA_NEW_ITEM).toBe(DELTA_NEW_ITEM);
    expect(codes.slice(1).every((r) => r >= 0 && (r & DELTA_NEW_ITEM) === 0)).toBe(true);
    const queued = codes.reduce((s, r) => s + (r & ~DELTA_NEW_ITEM), 0);
    expect(queued).toBe(refMulaw.length);
    expect(c.queuedBytes()).toBe(refMulaw.length);
    expect(drain(c).equals(refMulaw)).toBe(true);
    expect(c.queuedBytes()).toBe(0);
  });

  it('any split, odd byte counts included (samples straddling deltas), gives the same queue', () => {
    const pcm = pcm24.subarray(0, 24000 / 2);
    const bytes = new Uint8Array(pcmBytes(pcm));
    const ref = Buffer.from(encodeMulaw(resampleRef(24000, 8000, pcm)));
    // a fixed pattern of 1..7-byte deltas, then random ones
    const cuts: number[] = [];
    for (let o = 0, k = 1; o + k < bytes.length && cuts.length < 4000; k = (k % 7) + 1) cuts.push(o += k);
    const c = newCall({ format: 'pcm24k' });
    feed(c, bytes, cuts);
    expect(drain(c).equals(ref)).toBe(true);
    fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 60 }), (cs) => {
      const d = new CallDsp({ format: 'pcm24k' });
      try {
        d.setStreamSid(SID);
        const codes = feed(d, bytes, cs.sort((a, b) => a - b));
        if (codes.some((r) => r < 0)) return false;
        return drain(d).equals(ref);
      } finally {
        d.free();
      }
    }), { numRuns: 30 });
  });

  it('the slow path (base64 handed over) equals the message path', () => {
    const a = newCall({ format: 'pcm24k' });
    const b = newCall({ format: 'pcm24k' });
    for (let o = 0; o < 24000; o += 4801) {
      const part = bytes24.subarray(o, Math.min(24000, o + 4801));
      a.outboundMessage(delta(part));
      expect(b.outboundAudio(Buffer.from(part).toString('base64'))).toBeGreaterThanOrEqual(0);
    }
    expect(drain(a).equals(drain(b))).toBe(true);
  });

  it('a delta larger than one kernel chunk queues the same audio', () => {
    const c = newCall({ format: 'pcm24k' });
    const r = c.outboundMessage(delta(bytes24)); // 96000 bytes: many 8192-char chunks
    expect(r & ~DELTA_NEW_ITEM).toBe(refMulaw.length);
    expect(drain(c).equals(refMulaw)).toBe(true);
  });

  it('DELTA_NEW_ITEM marks the first delta of each item_id; currentItemId tells which', () => {
    const c = newCall({ format: 'pcmu' });
    const d = new Uint8Array(160);
    const ids = ['item_A', 'item_A', 'item_B', 'item_B', 'item_B', 'item_Ä', 'item_Ä', 'item_A'];
    const flags = ids.map((id) => {
      const r = c.outboundMessage(delta(d, id));
      expect(r & ~DELTA_NEW_ITEM).toBe(160);
      if (r & DELTA_NEW_ITEM) expect(c.currentItemId()).toBe(id);
      return (r & DELTA_NEW_ITEM) !== 0;
    });
    expect(flags).toEqual([true, false, true, false, false, true, false, true]);
  });

  it('an empty item_id is not mistaken for a dropped item', () => {
    const c = newCall({ format: 'pcmu' });
    expect(c.outboundMessage(delta(new Uint8Array(160), ''))).toBeGreaterThanOrEqual(0);
    expect(c.queuedBytes()).toBe(160);
  });

  it('dropCurrentItem empties the queue and drops that item; a new item flows from a fresh resampler', () => {
    const c = newCall({ format: 'pcm24k' });
    feed(c, bytes24.subarray(0, 9600), [960, 1921, 4000]);
    expect(c.queuedBytes()).toBeGreaterThan(0);
    expect(c.nextFrame(false)).not.toBeNull();
    c.dropCurrentItem();
    expect(c.queuedBytes()).toBe(0);
    expect(c.nextFrame(true)).toBeNull();
    expect(c.outboundMessage(delta(bytes24.subarray(9600, 9601)))).toBe(DELTA_DROPPED); // odd straggler
    expect(c.outboundMessage(delta(bytes24.subarray(9601, 19200)))).toBe(DELTA_DROPPED);
    expect(c.queuedBytes()).toBe(0);
    // the next response: same audio as a fresh stream would give, no tail of the cut item
    const b = bytes24.subarray(20000, 40000);
    const codes = feed(c, b, [999, 5000], 'item_B');
    expect(codes[0] & DELTA_NEW_ITEM).toBe(DELTA_NEW_ITEM);
    const ref = Buffer.from(encodeMulaw(resampleRef(24000, 8000, pcm24.subarray(10000, 20000))));
    expect(drain(c).equals(ref)).toBe(true);
    expect(c.outboundMessage(delta(bytes24.subarray(0, 960), 'item_A'))).toBe(DELTA_DROPPED);
  });

  it('a second drop before any new item keeps the first dropped item out', () => {
    const c = newCall({ format: 'pcmu' });
    c.outboundMessage(delta(new Uint8Array(320), 'item_A'));
    c.dropCurrentItem();
    c.dropCurrentItem(); // e.g. model speech_started after our own barge-in
    expect(c.outboundMessage(delta(new Uint8Array(320), 'item_A'))).toBe(DELTA_DROPPED);
    expect(c.queuedBytes()).toBe(0);
  });

  it('pcmu passes the bytes through, any split', () => {
    const c = newCall({ format: 'pcmu' });
    const b = Buffer.from(encodeMulaw(signal(4000, 8000, 5)));
    const codes = feed(c, b, [1, 2, 5, 160, 161, 999, 1000, 3001]);
    expect(codes.reduce((s, r) => s + (r & ~DELTA_NEW_ITEM), 0)).toBe(b.length);
    expect(drain(c).equals(b)).toBe(true);
  });

  it('other model events and bad deltas are refused without queueing', () => {
    const c = newCall({ format: 'pcm24k' });
    const other = [
      '{"type":"response.output_audio_transcript.delta","item_id":"item_A","delta":"hello"}',
      '{"type":"response.done","response":{"status":"completed"}}',
      '{"type":"session.created","session":{"type":"realtime"}}',
    ];
    for (const m of other) expect(c.outboundMessage(enc(m))).toBe(ERR_NOT_MEDIA);
    expect(c.outboundMessage(enc(deltaJson('AAA')))).toBe(ERR_BASE64);
    expect(c.outboundMessage(enc(deltaJson('!!!!')))).toBe(ERR_BASE64);
    expect(c.outboundMessage(enc(deltaJson('AA\\/A')))).toBe(ERR_NEEDS_PARSE);
    expect(c.queuedBytes()).toBe(0);
    const full = delta(bytes24.subarray(0, 960));
    for (let n = 0; n < full.length - 2; n++) expect(c.outboundMessage(full.subarray(0, n))).toBeLessThan(0);
  });
});

describe('nextFrame', () => {
  it('builds {"event":"media","streamSid":..,"media":{"payload":<160 bytes>}}, partial only when allowed', () => {
    const c = newCall({ format: 'pcmu' });
    const b = Buffer.from(encodeMulaw(signal(400, 8000, 2)));
    c.outboundMessage(delta(b));
    const frames: Buffer[] = [];
    for (let k = 0; k < 2; k++) {
      const f = c.nextFrame(false)!;
      const text = Buffer.from(f).toString('utf8');
      expect(text.startsWith(`{"event":"media","streamSid":"${SID}","media":{"payload":"`)).toBe(true);
      const msg = JSON.parse(text);
      expect(msg).toEqual({ event: 'media', streamSid: SID, media: { payload: expect.any(String) } });
      frames.push(Buffer.from(msg.media.payload, 'base64'));
      expect(c.lastFrameBytes()).toBe(160);
    }
    expect(c.queuedBytes()).toBe(80);
    expect(c.nextFrame(false)).toBeNull();
    expect(c.queuedBytes()).toBe(80);
    const last = JSON.parse(Buffer.from(c.nextFrame(true)!).toString());
    frames.push(Buffer.from(last.media.payload, 'base64'));
    expect(c.lastFrameBytes()).toBe(80);
    expect(Buffer.concat(frames).equals(b)).toBe(true);
    expect(c.nextFrame(true)).toBeNull();
    expect(c.lastFrameBytes()).toBe(0);
  });

  it('a streamSid that needs JSON escaping round-trips; an over-long one is refused', () => {
    const sid = 'MZ"quote\\back\nnl\u0001é漢\u2028/';
    const c = newCall({ format: 'pcmu' }, sid);
    c.outboundMessage(delta(new Uint8Array(160).fill(0x42)));
    const msg = JSON.parse(Buffer.from(c.nextFrame(false)!).toString('utf8'));
    expect(msg.streamSid).toBe(sid);
    expect(Buffer.from(msg.media.payload, 'base64').equals(Buffer.alloc(160, 0x42))).toBe(true);
    expect(c.setStreamSid('M'.repeat(400))).toBe(false);
  });

  it('without a streamSid no frame is built and nothing is consumed', () => {
    const c = newCall({ format: 'pcmu' }, null);
    c.outboundMessage(delta(new Uint8Array(320)));
    expect(c.nextFrame(true)).toBeNull();
    expect(c.queuedBytes()).toBe(320);
    c.setStreamSid(SID);
    expect(drain(c).length).toBe(320);
  });

  it('a freed call refuses audio instead of writing over shared memory; queries answer empty', () => {
    const other = newCall({ format: 'pcmu' });
    const c = new CallDsp({ format: 'pcm24k' });
    c.setStreamSid(SID);
    c.free();
    const m = media(new Uint8Array(160).fill(0x33), 52);
    expect(() => c.inboundMessage(m, false)).toThrow(/after free/);
    expect(() => c.inboundPayload('AAAA', 52, false)).toThrow(/after free/);
    expect(() => c.outboundMessage(delta(new Uint8Array(320)))).toThrow(/after free/);
    expect(() => c.outboundAudio('AAAA')).toThrow(/after free/);
    expect(c.nextFrame(true)).toBeNull();
    expect(c.queuedBytes()).toBe(0);
    c.dropCurrentItem();
    expect(c.setStreamSid(SID)).toBe(false);
    expect(other.inboundMessage(m, false)).toBeGreaterThanOrEqual(0);
    expect(appendAudio(other).equals(Buffer.alloc(160, 0x33))).toBe(true);
  });

  it('the kernel gives a ring of at least one frame for a zero size', () => {
    const ex = raw as unknown as { call_new(m: number, r: number): number; call_free(p: number): void;
      call_queue_space(p: number): number };
    const p = ex.call_new(1, 0);
    expect(ex.call_queue_space(p)).toBe(FRAME_BYTES);
    ex.call_free(p);
  });

  it('a full queue takes what fits and says so', () => {
    const c = newCall({ format: 'pcmu', queueSeconds: 0.1 }); // 800 bytes
    expect(c.outboundMessage(delta(new Uint8Array(500).fill(1)))).toBe(500 | DELTA_NEW_ITEM);
    expect(c.outboundMessage(delta(new Uint8Array(500).fill(2)))).toBe(300);
    expect(c.queueSpace()).toBe(0);
    expect(c.outboundMessage(delta(new Uint8Array(500).fill(3)))).toBe(0);
    expect(drain(c).equals(Buffer.concat([Buffer.alloc(500, 1), Buffer.alloc(300, 2)]))).toBe(true);
  });

  it('a tiny queue setting still gives a working queue', () => {
    const c = newCall({ format: 'pcmu', queueSeconds: 0 });
    expect(c.queueSpace()).toBeGreaterThanOrEqual(FRAME_BYTES);
    expect(c.outboundMessage(delta(new Uint8Array(160).fill(7)))).toBeGreaterThanOrEqual(160);
    expect(drain(c).equals(Buffer.alloc(160, 7))).toBe(true);
  });
});

// ==============================================================================================

describe('memory', () => {
  it('does not grow across thousands of frames of both paths once the call exists', () => {
    for (const format of ['pcm24k', 'pcmu'] as const) {
      const c = newCall({ format, queueSeconds: 2 });
      const inMsgs = Array.from({ length: 50 }, (_, k) => media(encodeMulaw(signal(160, 8000, k)), 0));
      // a new item after every drop: deltas[item][k]
      const deltas = Array.from({ length: 16 }, (_, item) => Array.from({ length: 7 }, (_, k) =>
        delta(new Uint8Array(pcmBytes(signal(format === 'pcmu' ? 160 + k : 480 + k, 24000, k))), `item_${item}`)));
      const big = Array.from({ length: 16 }, (_, item) => delta(new Uint8Array(200_000).fill(1), `item_${item}`));
      const gapped = media(new Uint8Array(160), 0);
      const before = raw.memory.buffer.byteLength;
      const buf = raw.memory.buffer;
      for (let k = 0; k < 3000; k++) {
        const m = k % 500 === 499 ? gapped : inMsgs[k % 50];
        // timestamps are rewritten in place: the message bytes stay the same length
        const ts = String(100000 + 20 * k + (k % 500 === 499 ? 3000 : 0));
        const text = Buffer.from(m).toString().replace(/"timestamp":"\d+"/, `"timestamp":"${ts}"`);
        expect(c.inboundMessage(enc(text), k % 3 === 0)).toBeGreaterThanOrEqual(0);
        expect(c.appendMessage().length).toBeGreaterThan(0);
        const item = Math.floor(k / 200);
        expect(c.outboundMessage(deltas[item][k % 7])).toBeGreaterThanOrEqual(0);
        if (k % 1000 === 1) expect(c.outboundMessage(big[item])).toBeGreaterThanOrEqual(0);
        c.nextFrame(false);
        if (k % 200 === 199) c.dropCurrentItem();
      }
      expect(raw.memory.buffer.byteLength).toBe(before);
      expect(raw.memory.buffer).toBe(buf);
    }
  });

  it('same-size messages and frames reuse one view (no per-frame allocation)', () => {
    const c = newCall({ format: 'pcm24k' });
    c.inboundMessage(media(new Uint8Array(160).fill(0x55), 52), false);
    const v = c.appendMessage();
    c.inboundMessage(media(new Uint8Array(160).fill(0x66), 72), false);
    expect(c.appendMessage()).toBe(v);
    c.outboundMessage(delta(new Uint8Array(960 * 4)));
    const f = c.nextFrame(false);
    expect(c.nextFrame(false)).toBe(f);
  });

  it('call_free + call_new in a loop reuses the state', () => {
    const warm = [new CallDsp({ format: 'pcm24k' }), new CallDsp({ format: 'pcmu' })];
    warm.forEach((c) => c.free());
    const before = raw.memory.buffer.byteLength;
    for (let k = 0; k < 300; k++) {
      const c = new CallDsp({ format: k % 2 ? 'pcmu' : 'pcm24k' });
      c.setStreamSid(SID);
      c.inboundMessage(media(new Uint8Array(160), 52), false);
      c.free();
      expect(c.freed).toBe(true);
      c.free(); // twice is harmless
    }
    expect(raw.memory.buffer.byteLength).toBe(before);
  });

  it('views are rebuilt when a new call grows memory; earlier calls keep working', () => {
    const mulaw = encodeMulaw(signal(1600, 8000, 21));
    const first = newCall({ format: 'pcm24k' });
    const out: Buffer[] = [];
    first.inboundMessage(media(mulaw.subarray(0, 160), 52), false);
    out.push(appendAudio(first));
    const buf = raw.memory.buffer;
    const more: CallDsp[] = [];
    while (raw.memory.buffer === buf) more.push(newCall({ format: 'pcm24k', queueSeconds: 60 }));
    expect(more.length).toBeGreaterThan(0);
    for (let k = 1; k < 10; k++) {
      expect(first.inboundMessage(media(mulaw.subarray(k * 160, k * 160 + 160), 52 + 20 * k), false))
        .toBeGreaterThanOrEqual(0);
      out.push(appendAudio(first));
    }
    const ref = resampleRef(8000, 24000, decodeMulaw(mulaw));
    expect(Buffer.concat(out).equals(pcmBytes(ref))).toBe(true);
    const last = more[more.length - 1];
    last.outboundMessage(delta(new Uint8Array(960).fill(0)));
    expect(drain(last).length).toBe(160); // 480 samples at 24 kHz
  });
});

// ==============================================================================================

describe('VAD flags', () => {
  // 1 s of quiet line noise, then a loud tone, then quiet again
  const pcm8 = Int16Array.from([...noise(8000, 60, 3), ...signal(4000, 8000, 4, 8000), ...noise(8000, 60, 5)]);
  const mulaw = encodeMulaw(pcm8);
  const decoded = decodeMulaw(mulaw);

  function run(c: CallDsp, bot: boolean): number[] {
    const flags: number[] = [];
    for (let k = 0; k < mulaw.length / 160; k++) {
      flags.push(c.inboundMessage(media(mulaw.subarray(k * 160, k * 160 + 160), 52 + 20 * k), bot));
    }
    return flags;
  }

  it('are passed through: onset on the first loud frame after silence, as a separate VAD says', () => {
    const params: VadParams = { thresholdDb: 10, minSpeechMs: 20, hangoverMs: 200, botThresholdDb: 25, botMinSpeechMs: 60 };
    const c = newCall({ format: 'pcm24k', vad: params });
    const flags = run(c, false);
    expect(flags).toEqual(vadRef(decoded, 160, params, false));
    expect(flags.findIndex((f) => (f & VAD_ONSET) !== 0)).toBe(50);
    const d = newCall({ format: 'pcmu', vad: params });
    expect(run(d, true)).toEqual(vadRef(decoded, 160, params, true));
  });

  it('the defaults of CallDsp are the VAD kernel defaults, also for partial overrides', () => {
    // a step about 10 dB over the floor: between plausible thresholds, so it tells them apart
    const step = Int16Array.from([...noise(8000, 300, 8), ...noise(4000, 950, 9)]);
    const m = encodeMulaw(step);
    const flagsOf = (c: CallDsp) => {
      const f: number[] = [];
      for (let k = 0; k < m.length / 160; k++) f.push(c.inboundMessage(media(m.subarray(k * 160, k * 160 + 160), 52 + 20 * k), false));
      return f;
    };
    const kernel = vadRef(decodeMulaw(m), 160, null, false);
    expect(flagsOf(newCall({ format: 'pcmu' }))).toEqual(kernel);
    expect(flagsOf(newCall({ format: 'pcmu', vad: DEFAULT_VAD }))).toEqual(kernel);
    expect(flagsOf(newCall({ format: 'pcmu', vad: { hangoverMs: DEFAULT_VAD.hangoverMs } }))).toEqual(kernel);
    // and the step is one that a different threshold would judge differently
    const other = { ...DEFAULT_VAD, thresholdDb: DEFAULT_VAD.thresholdDb + 6 };
    expect(vadRef(decodeMulaw(m), 160, other, false)).not.toEqual(kernel);
  });
});

describe('outbound frame level (for the echo gate)', () => {
  it('equals the 20 ms energy the VAD measures on the same decoded frame', () => {
    const dsp = new CallDsp({ format: 'pcmu' });
    dsp.setStreamSid('MZlevel');
    const pcm = new Int16Array(160 * 3);
    for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000) * (1 + (i >> 7)));
    const mu = encodeMulaw(pcm);
    const delta = JSON.stringify({ type: 'response.output_audio.delta', item_id: 'it1', delta: Buffer.from(mu).toString('base64') });
    expect(dsp.outboundMessage(Buffer.from(delta))).toBeGreaterThan(0);
    for (let f = 0; f < 3; f++) {
      expect(dsp.nextFrame(false)).not.toBeNull();
      const meter = new Vad();
      meter.process(decodeMulaw(mu.subarray(f * 160, f * 160 + 160)));
      expect(dsp.lastFrameEnergyDb()).toBeCloseTo(meter.energyDb, 4);
      meter.free();
    }
    expect(dsp.nextFrame(true)).toBeNull();
    expect(dsp.lastFrameEnergyDb()).toBe(-100);
    dsp.free();
  });
});
