// The two whole frame paths, per 20 ms of audio.
//
// Inbound (Twilio media message bytes -> model append message bytes):
//   - CallDsp.inboundMessage: one WASM call does scan + base64 decode + mu-law decode + VAD +
//     8k->24k + base64 encode + the append message (src/dsp/call.ts);
//   - a mixed variant: the WASM key scan finds the payload, Node's Buffer decodes the base64
//     straight into WASM memory, the WASM kernels run one by one, and Buffer encodes the 24 kHz
//     PCM from WASM memory into the message bytes;
//   - a typical npm stack: JSON.parse, Buffer base64, alawmulaw, speex-resampler's public API
//     (q3), a JS energy sum, JSON.stringify;
//   - the reference: bare Buffer base64 decode of the payload + encode of the 960 output bytes,
//     the least any implementation must do. Goal: the whole path <= 2x this.
// Outbound (model delta message bytes -> Twilio media message bytes, 20 ms each): CallDsp
//   outboundMessage + nextFrame, for 20 ms and 200 ms deltas; the npm stack; the bare base64
//   decode of the delta + encode of the 160 mu-law bytes.
import alawmulaw from 'alawmulaw';
import { CallDsp } from '../src/dsp/call.js';
import { jsonKey } from '../src/dsp/json.js';
import { ulawEncodeTable } from './baselines/g711-table.js';
import { alloc, dsp, mem } from './dsp.js';
import type { Group } from './harness.js';

// alawmulaw is UMD (CommonJS to Node): its namespace only has a default export.
const { mulaw } = alawmulaw;

const STREAM_SID = 'MZ18ad3ab5a668481ce02b83e7395059f0';

export function twilioMedia(mu: Uint8Array, i: number): Buffer {
  return Buffer.from(JSON.stringify({
    event: 'media',
    sequenceNumber: String(i + 2),
    streamSid: STREAM_SID,
    media: { track: 'inbound', chunk: String(i + 1), timestamp: String(52 + 20 * i), payload: Buffer.from(mu).toString('base64') },
  }));
}

export function modelDelta(pcm: Int16Array): Buffer {
  return Buffer.from(JSON.stringify({
    type: 'response.output_audio.delta',
    event_id: 'event_CFqlzXzhbEWFoXZ8pXtXm',
    response_id: 'resp_CFqlzrQ6Hn4nHzY0X3Hzl',
    item_id: 'item_CFqlzaHz0ZFmY9qVd0Spm',
    output_index: 0,
    content_index: 0,
    delta: Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).toString('base64'),
  }));
}

interface SpeexApi {
  processChunk(b: Buffer): Buffer;
}

async function npmSpeex(inRate: number, outRate: number, q: number): Promise<SpeexApi> {
  const mod = (await import('speex-resampler')) as unknown as { default: unknown };
  const Cls = ((mod.default as { default?: unknown }).default ?? mod.default) as {
    new (ch: number, i: number, o: number, q: number): SpeexApi;
    initPromise: Promise<unknown>;
  };
  await Cls.initPromise;
  return new Cls(1, inRate, outRate, q);
}

let sink = 0;

export async function inboundGroup(pcm8: Int16Array[]): Promise<Group> {
  const F = pcm8.length;
  const mus = pcm8.map((f) => { const c = new Uint8Array(f.length); ulawEncodeTable(f, c, f.length); return c; });
  const msgs = mus.map((m, i) => twilioMedia(m, i));
  const payloads = mus.map((m) => Buffer.from(m).toString('base64'));

  // ours: one WASM call per message
  const call = new CallDsp({ format: 'pcm24k' });

  // mixed: Buffer base64 in/out of WASM memory, the kernels called one by one
  const kEvent = jsonKey('event');
  const kPayload = jsonKey('payload');
  const msgPtr = alloc(4096);
  const muPtr = alloc(1024);
  const pcm8Ptr = alloc(1024);
  const pcm24Ptr = alloc(4096);
  const up = dsp.resampler_new(8000, 24000);
  const vad = dsp.vad_new();
  const PREFIX = '{"type":"input_audio_buffer.append","audio":"';
  const outMsg = Buffer.alloc(8192);
  outMsg.write(PREFIX, 0, 'latin1');
  const mixed = (msg: Buffer): number => {
    mem.set(msg, msgPtr);
    const ev = dsp.json_find_string(msgPtr, msg.length, kEvent.ptr, kEvent.len);
    if (ev < 0 || dsp.json_last_len() !== 5) return -1;
    const pay = dsp.json_find_string(msgPtr, msg.length, kPayload.ptr, kPayload.len);
    if (pay < 0) return -1;
    const b64 = mem.toString('latin1', msgPtr + pay, msgPtr + pay + dsp.json_last_len());
    const n = mem.write(b64, muPtr, 'base64');
    dsp.ulaw_decode_block(muPtr, pcm8Ptr, n);
    dsp.vad_process(vad, pcm8Ptr, n, 0);
    const m = dsp.resampler_process(up, pcm8Ptr, n, pcm24Ptr);
    const enc = mem.toString('base64', pcm24Ptr, pcm24Ptr + m * 2);
    let w = PREFIX.length + outMsg.write(enc, PREFIX.length, 'latin1');
    outMsg[w++] = 0x22;
    outMsg[w++] = 0x7d;
    return w;
  };
  // sanity: both WASM variants produce the same bytes from fresh state
  for (let i = 0; i < 3; i++) {
    if (call.inboundMessage(msgs[i], false) < 0) throw new Error('CallDsp.inboundMessage failed');
    const a = Buffer.from(call.appendMessage());
    const w = mixed(msgs[i]);
    if (Buffer.compare(a, outMsg.subarray(0, w)) !== 0) throw new Error('mixed inbound variant disagrees with CallDsp');
  }

  // typical npm stack
  const upNpm = await npmSpeex(8000, 24000, 3);
  const npmStack = (msg: Buffer): number => {
    const m = JSON.parse(msg.toString()) as { event: string; media: { payload: string } };
    if (m.event !== 'media') return -1;
    const pcm = mulaw.decode(Buffer.from(m.media.payload, 'base64'));
    let e = 0;
    for (let k = 0; k < pcm.length; k++) e += pcm[k] * pcm[k];
    const p24 = upNpm.processChunk(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    const out = Buffer.from(JSON.stringify({ type: 'input_audio_buffer.append', audio: p24.toString('base64') }));
    return out.length + (e > 0 ? 1 : 0);
  };

  // reference: bare base64 of the same frame
  const decodeDst = Buffer.alloc(1024);
  const pcm24Frame = Buffer.from(Buffer.from(call.appendMessage().subarray(PREFIX.length, -2)).toString('latin1'), 'base64');
  if (pcm24Frame.length !== 960) throw new Error(`unexpected 24 kHz frame size ${pcm24Frame.length}`);
  const outFrames = Array.from({ length: F }, () => Buffer.from(pcm24Frame));

  const avg = Math.round(msgs.reduce((a, m) => a + m.length, 0) / F);
  return {
    title: `inbound path, per Twilio media message (${avg} B -> ${PREFIX.length + 1280 + 2} B append)`,
    entries: [
      { name: 'CallDsp.inboundMessage (1 WASM call)', role: 'ours', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += call.inboundMessage(msgs[i], false) + call.appendMessage().length; } },
      { name: 'WASM scan + kernels, Buffer base64 in/out of WASM memory', role: 'ours', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += mixed(msgs[i]); } },
      { name: 'npm stack: JSON.parse, Buffer, alawmulaw, speex-resampler q3', role: 'peer', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += npmStack(msgs[i]); } },
      { name: "bare Buffer base64: decode payload + encode 960 B", role: 'ref', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += decodeDst.write(payloads[i], 0, 'base64') + outFrames[i].toString('base64').length; } },
    ],
  };
}

export async function outboundGroup(pcm24: Int16Array[]): Promise<Group> {
  const F = pcm24.length; // 20 ms frames of 480 samples
  const deltas = pcm24.map((f) => modelDelta(f));
  const PER_BIG = 10;
  const big: Buffer[] = [];
  for (let i = 0; i + PER_BIG <= F; i += PER_BIG) {
    const joined = new Int16Array(480 * PER_BIG);
    for (let k = 0; k < PER_BIG; k++) joined.set(pcm24[i + k], 480 * k);
    big.push(modelDelta(joined));
  }
  const deltaB64 = pcm24.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64'));

  const call = new CallDsp({ format: 'pcm24k' });
  call.setStreamSid(STREAM_SID);
  const callBig = new CallDsp({ format: 'pcm24k' });
  callBig.setStreamSid(STREAM_SID);
  const drain = (c: CallDsp): number => {
    let n = 0;
    for (let f = c.nextFrame(false); f !== null; f = c.nextFrame(false)) n += f.length;
    return n;
  };
  // sanity: 20 ms in -> one 20 ms Twilio frame out, steadily
  for (let i = 0; i < 3; i++) {
    if (call.outboundMessage(deltas[i]) < 0) throw new Error('CallDsp.outboundMessage failed');
    drain(call);
  }
  if (call.queuedBytes() !== 0) throw new Error('outbound queue does not drain per frame');

  const downNpm = await npmSpeex(24000, 8000, 3);
  const npmStack = (msg: Buffer): number => {
    const m = JSON.parse(msg.toString()) as { type: string; delta: string };
    if (m.type !== 'response.output_audio.delta') return -1;
    const p8 = downNpm.processChunk(Buffer.from(m.delta, 'base64'));
    const mu = mulaw.encode(new Int16Array(p8.buffer, p8.byteOffset, p8.length >> 1));
    const out = Buffer.from(JSON.stringify({ event: 'media', streamSid: STREAM_SID, media: { payload: Buffer.from(mu.buffer, mu.byteOffset, mu.length).toString('base64') } }));
    return out.length;
  };
  const decodeDst = Buffer.alloc(2048);
  const muFrame = Buffer.alloc(160, 0x55);

  const avg = Math.round(deltas.reduce((a, m) => a + m.length, 0) / F);
  return {
    title: `outbound path, per 20 ms (${avg} B delta -> Twilio media message)`,
    entries: [
      { name: 'CallDsp.outboundMessage + nextFrame, 20 ms deltas', role: 'ours', frames: F,
        fn: () => { for (let i = 0; i < F; i++) { sink += call.outboundMessage(deltas[i]); sink += drain(call); } } },
      { name: 'CallDsp.outboundMessage + nextFrame, 200 ms deltas', role: 'ours', frames: big.length * PER_BIG,
        fn: () => { for (let i = 0; i < big.length; i++) { sink += callBig.outboundMessage(big[i]); sink += drain(callBig); } } },
      { name: 'npm stack: JSON.parse, Buffer, speex-resampler q3, alawmulaw', role: 'peer', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += npmStack(deltas[i]); } },
      { name: 'bare Buffer base64: decode delta + encode 160 B', role: 'ref', frames: F,
        fn: () => { for (let i = 0; i < F; i++) sink += decodeDst.write(deltaB64[i], 0, 'base64') + muFrame.toString('base64').length; } },
    ],
  };
}

export function pathSink(): number {
  return sink;
}
