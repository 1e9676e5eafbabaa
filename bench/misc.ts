// VAD, base64 and the JSON key scan, per 20 ms frame / per message.
import { jsonKey } from '../src/dsp/json.js';
import { alloc, dsp, i16At, mem, u8At } from './dsp.js';
import type { Group } from './harness.js';

const FRAME = 160;

export function vadGroup(pcm: Int16Array[]): Group {
  const F = pcm.length;
  const ptr = alloc(F * FRAME * 2);
  pcm.forEach((f, i) => i16At(ptr + i * FRAME * 2, FRAME).set(f));
  const v = dsp.vad_new();
  return {
    title: 'VAD, 160 samples (two 10 ms decisions)',
    entries: [
      { name: 'WASM energy VAD', role: 'ours', frames: F, quality: 'no peer in this run',
        fn: () => { for (let i = 0; i < F; i++) dsp.vad_process(v, ptr + i * FRAME * 2, FRAME, 0); } },
    ],
  };
}

/** Encode and decode groups for frames of `bytes` bytes (160: a mu-law frame; 960: 20 ms PCM16 at 24 kHz). */
export function base64Groups(frames: Uint8Array[], label: string): Group[] {
  const F = frames.length;
  const bytes = frames[0].length;
  const chars = Math.ceil(bytes / 3) * 4;
  const rawPtr = alloc(F * bytes);
  const txtPtr = alloc(F * chars);
  const outPtr = alloc(chars + 16);
  frames.forEach((f, i) => u8At(rawPtr + i * bytes, bytes).set(f));
  const texts = frames.map((f) => Buffer.from(f).toString('base64'));
  texts.forEach((t, i) => mem.write(t, txtPtr + i * chars, 'latin1'));
  const bufs = frames.map((f) => Buffer.from(f));
  const dst = Buffer.alloc(bytes);
  // sanity: the WASM codec agrees with Buffer on these frames
  for (let i = 0; i < F; i++) {
    const w = dsp.b64_encode(rawPtr + i * bytes, bytes, outPtr);
    if (mem.toString('latin1', outPtr, outPtr + w) !== texts[i]) throw new Error('b64_encode disagrees with Buffer');
    const n = dsp.b64_decode(txtPtr + i * chars, chars, outPtr);
    if (n !== bytes || Buffer.compare(mem.subarray(outPtr, outPtr + n), bufs[i]) !== 0) throw new Error('b64_decode disagrees with Buffer');
  }
  let sink = 0;
  const enc: Group = {
    title: `base64 encode, ${bytes} B (${label})`,
    entries: [
      { name: 'WASM b64_encode (bytes -> chars in WASM memory)', role: 'ours', frames: F,
        fn: () => { for (let i = 0; i < F; i++) dsp.b64_encode(rawPtr + i * bytes, bytes, outPtr); } },
      { name: "Node Buffer.toString('base64') (-> string)", role: 'peer', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += bufs[i].toString('base64').length; } },
    ],
  };
  const dec: Group = {
    title: `base64 decode, ${chars} chars -> ${bytes} B (${label})`,
    entries: [
      { name: 'WASM b64_decode (strict; chars -> bytes in WASM memory)', role: 'ours', frames: F,
        fn: () => { for (let i = 0; i < F; i++) dsp.b64_decode(txtPtr + i * chars, chars, outPtr); } },
      { name: "Node buf.write(string, 'base64') (into a preallocated Buffer)", role: 'peer', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += dst.write(texts[i], 0, 'base64'); } },
      { name: "Node Buffer.from(string, 'base64') (allocates)", role: 'peer', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += Buffer.from(texts[i], 'base64').length; } },
    ],
  };
  return [enc, dec];
}

/** Finding event, payload and timestamp in Twilio media messages. */
export function jsonGroup(messages: Buffer[]): Group {
  const F = messages.length;
  const cap = Math.max(...messages.map((m) => m.length));
  const msgPtr = alloc(F * cap);
  const oneMsg = alloc(cap);
  messages.forEach((m, i) => mem.set(m, msgPtr + i * cap));
  const strings = messages.map((m) => m.toString('utf8'));
  const kEvent = jsonKey('event');
  const kPayload = jsonKey('payload');
  const kTimestamp = jsonKey('timestamp');
  // The kernel's scan: all three keys in one pass (json_find_strings), as call_inbound_message does.
  const keyTable = alloc(24);
  new Int32Array(mem.buffer, mem.byteOffset + keyTable, 6).set([
    kEvent.ptr, kEvent.len, kPayload.ptr, kPayload.len, kTimestamp.ptr, kTimestamp.len,
  ]);
  const scan = (p: number, len: number): number => dsp.json_find_strings(p, len, keyTable, 3);
  // sanity: the scan finds the same payload JSON.parse does
  {
    const off = dsp.json_find_string(msgPtr, messages[0].length, kPayload.ptr, kPayload.len);
    const got = mem.toString('latin1', msgPtr + off, msgPtr + off + dsp.json_last_len());
    if (got !== (JSON.parse(strings[0]) as { media: { payload: string } }).media.payload) throw new Error('json scan disagrees with JSON.parse');
  }
  let sink = 0;
  const size = Math.round(messages.reduce((a, m) => a + m.length, 0) / F);
  return {
    title: `JSON: event + payload + timestamp of a Twilio media message (${size} B)`,
    entries: [
      { name: 'WASM key scan (message already in WASM memory)', role: 'ours', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += scan(msgPtr + i * cap, messages[i].length); } },
      { name: 'WASM key scan + copy of the message bytes in', role: 'ours', frames: F,
        fn: () => { for (let i = 0; i < F; i++) { mem.set(messages[i], oneMsg); sink += scan(oneMsg, messages[i].length); } } },
      { name: 'JSON.parse(string) + fields', role: 'peer', frames: F,
        fn: () => {
          for (let i = 0; i < F; i++) {
            const m = JSON.parse(strings[i]) as { event: string; media: { payload: string; timestamp: string } };
            sink += m.event.length + m.media.payload.length + m.media.timestamp.length;
          }
        } },
      { name: 'JSON.parse(bytes.toString()) + fields', role: 'peer', frames: F,
        fn: () => {
          for (let i = 0; i < F; i++) {
            const m = JSON.parse(messages[i].toString()) as { event: string; media: { payload: string; timestamp: string } };
            sink += m.event.length + m.media.payload.length + m.media.timestamp.length;
          }
        } },
    ],
  };
}
