// One call's DSP state and the whole-frame kernels the bridge calls once per message:
//   Twilio `media` message bytes  -> model `input_audio_buffer.append` message bytes (+ VAD flags)
//   model `response.output_audio.delta` bytes -> 8 kHz mu-law in the call's outbound ring
//   outbound ring -> one ready-to-send Twilio `media` message (20 ms)
// The TypeScript side only copies message bytes into IN_MSG and sends the bytes we write; it never
// sees a sample. All buffers are allocated at call start (call_new) or module start, so memory
// never grows while a call is running.

import { json_find_strings, json_found, json_found_len } from "./json";
import { b64_decode, b64_encode } from "./base64";
import { ulaw_decode_block, ulaw_encode_block } from "./g711";
import { resampler_new, resampler_free, resampler_process, resampler_reset } from "./resample";
import { vad_new, vad_free, vad_process, vad_reset } from "./vad";
import { ring_new, ring_free, ring_write, ring_read, ring_available, ring_space, ring_clear } from "./ring";

// ---- limits ---------------------------------------------------------------------------------

/** Largest message the bridge copies into WASM in one piece (bigger deltas take the chunked path). */
export const IN_MSG_CAP: i32 = 512 * 1024;
/** A timestamp gap is filled with at most this much silence per media message (1 s). */
const MAX_GAP_BYTES: i32 = 8000;
/** Largest inbound payload accepted per media message (mu-law bytes; Twilio sends 160). */
const MAX_PAYLOAD_BYTES: i32 = 8000;
const MAX_IN_BYTES: i32 = MAX_GAP_BYTES + MAX_PAYLOAD_BYTES;
/** Outbound deltas are decoded in chunks of this many base64 chars (a multiple of 4). */
const DELTA_CHUNK_CHARS: i32 = 8192;
const DELTA_CHUNK_BYTES: i32 = DELTA_CHUNK_CHARS / 4 * 3;
const ID_CAP: i32 = 96;
const PREFIX_CAP: i32 = 192;
export const FRAME_BYTES: i32 = 160;

// ---- modes and result codes ------------------------------------------------------------------

/** Model audio format: 24 kHz PCM16 (resampled) or 8 kHz mu-law passthrough. */
export const MODE_PCM24: i32 = 0;
export const MODE_PCMU: i32 = 1;

export const ERR_NOT_MEDIA: i32 = -1;   // not a media/delta message: handle as a control event
export const ERR_NEEDS_PARSE: i32 = -2; // fields missing or escaped: use the JSON.parse path
export const ERR_BASE64: i32 = -3;      // payload is not valid base64
export const ERR_TOO_LARGE: i32 = -4;   // payload larger than the kernel accepts
export const DELTA_DROPPED: i32 = -6;   // delta of an item cut by barge-in: ignored
/** Set in call_outbound_delta's result when the delta starts a new item (see call_item_ptr). */
export const DELTA_NEW_ITEM: i32 = 1 << 30;

// ---- per-thread scratch (single-threaded: one message in flight at a time) -----------------------

const IN_MSG: usize = heap.alloc(<usize>IN_MSG_CAP);
const OUT_MSG_CAP: i32 = 64 + (MAX_IN_BYTES * 3 * 2 + 2) / 3 * 4 + 4;
const OUT_MSG: usize = heap.alloc(<usize>OUT_MSG_CAP);
const OUT_FRAME: usize = heap.alloc(<usize>(PREFIX_CAP + 256));
const MULAW_BUF: usize = heap.alloc(<usize>(MAX_IN_BYTES + DELTA_CHUNK_BYTES + 16));
const PCM8_BUF: usize = heap.alloc(<usize>(MAX_IN_BYTES * 2 + 64));
const PCM24_BUF: usize = heap.alloc(<usize>(MAX_IN_BYTES * 6 + DELTA_CHUNK_BYTES + 64));

let outLen: i32 = 0;
let frameBytes: i32 = 0;
let frameEnergyDb: f32 = -100;

function ascii(s: string): usize {
  return changetype<usize>(String.UTF8.encode(s, false));
}

function keyTable3(k0: usize, n0: i32, k1: usize, n1: i32, k2: usize, n2: i32): usize {
  const t = heap.alloc(24);
  store<i32>(t, <i32>k0, 0);
  store<i32>(t, n0, 4);
  store<i32>(t, <i32>k1, 8);
  store<i32>(t, n1, 12);
  store<i32>(t, <i32>k2, 16);
  store<i32>(t, n2, 20);
  return t;
}
const KEY_EVENT = ascii("event");
const KEY_PAYLOAD = ascii("payload");
const KEY_TIMESTAMP = ascii("timestamp");
const KEY_TYPE = ascii("type");
const KEY_DELTA = ascii("delta");
const KEY_ITEM_ID = ascii("item_id");
const VAL_MEDIA = ascii("media");
// (pointer, length) pairs for json_find_strings, in the order of the *_K indices.
const MEDIA_KEYS: usize = keyTable3(KEY_EVENT, 5, KEY_PAYLOAD, 7, KEY_TIMESTAMP, 9);
const EVENT_K = 0, PAYLOAD_K = 1, TIMESTAMP_K = 2;
const DELTA_KEYS: usize = keyTable3(KEY_TYPE, 4, KEY_ITEM_ID, 7, KEY_DELTA, 5);
const TYPE_K = 0, ITEM_ID_K = 1, DELTA_K = 2;
const VAL_DELTA = ascii("response.output_audio.delta");
const APPEND_PREFIX_STR = '{"type":"input_audio_buffer.append","audio":"';
const APPEND_PREFIX = ascii(APPEND_PREFIX_STR);
const APPEND_PREFIX_LEN: i32 = APPEND_PREFIX_STR.length;
const MEDIA_PREFIX_A_STR = '{"event":"media","streamSid":"';
const MEDIA_PREFIX_A = ascii(MEDIA_PREFIX_A_STR);
const MEDIA_PREFIX_A_LEN: i32 = MEDIA_PREFIX_A_STR.length;
const MEDIA_PREFIX_B_STR = '","media":{"payload":"';
const MEDIA_PREFIX_B = ascii(MEDIA_PREFIX_B_STR);
const MEDIA_PREFIX_B_LEN: i32 = MEDIA_PREFIX_B_STR.length;

// ---- per-call state layout --------------------------------------------------------------------

const F_MODE = 0;          // i32
const F_UP = 4;            // usize: 8k -> 24k resampler (PCM24 mode)
const F_DOWN = 8;          // usize: 24k -> 8k resampler (PCM24 mode)
const F_VAD = 12;          // usize
const F_RING = 16;         // usize: outbound mu-law ring
const F_GAP = 20;          // i32: silence inserted for timestamp gaps, in total, 8 kHz samples
const F_CARRY = 24;        // i32: odd PCM byte carried between deltas, -1 if none
const F_PREFIX_LEN = 28;   // i32
const F_ITEM_LEN = 32;     // i32
const F_DROP_LEN = 36;     // i32
const F_NEXT_TS = 40;      // i64: where the next media message should start, in 8 kHz samples
                           //      since stream start (timestamp * 8); -1 before the first
const F_PREFIX = 48;                     // PREFIX_CAP bytes: Twilio media message up to the payload
const F_ITEM = F_PREFIX + PREFIX_CAP;    // ID_CAP bytes: item id of the audio being queued
const F_DROP = F_ITEM + ID_CAP;          // ID_CAP bytes: item id cut by barge-in
const STATE_SIZE = F_DROP + ID_CAP;

/**
 * Allocates one call's state. `mode` is MODE_PCM24 or MODE_PCMU; `ringBytes` is the outbound
 * queue size in 8 kHz mu-law bytes (8000 per second of bot audio).
 */
export function call_new(mode: i32, ringBytes: i32): usize {
  const p = heap.alloc(<usize>STATE_SIZE);
  memory.fill(p, 0, <usize>STATE_SIZE);
  store<i32>(p, mode, F_MODE);
  if (mode == MODE_PCM24) {
    store<usize>(p, resampler_new(8000, 24000), F_UP);
    store<usize>(p, resampler_new(24000, 8000), F_DOWN);
  }
  store<usize>(p, vad_new(), F_VAD);
  // A ring must hold at least one frame; ring_new(0) would return a null ring.
  store<usize>(p, ring_new(max(ringBytes, FRAME_BYTES)), F_RING);
  store<i64>(p, -1, F_NEXT_TS);
  store<i32>(p, -1, F_CARRY);
  return p;
}

export function call_free(p: usize): void {
  if (p == 0) return;
  const up = load<usize>(p, F_UP);
  const down = load<usize>(p, F_DOWN);
  if (up != 0) resampler_free(up);
  if (down != 0) resampler_free(down);
  vad_free(load<usize>(p, F_VAD));
  ring_free(load<usize>(p, F_RING));
  heap.free(p);
}

export function call_in_ptr(): usize { return IN_MSG; }
export function call_in_cap(): i32 { return IN_MSG_CAP; }
export function call_out_ptr(): usize { return OUT_MSG; }
export function call_out_len(): i32 { return outLen; }
export function call_frame_ptr(): usize { return OUT_FRAME; }
export function call_frame_bytes(): i32 { return frameBytes; }
export function call_vad(p: usize): usize { return load<usize>(p, F_VAD); }
export function call_ring(p: usize): usize { return load<usize>(p, F_RING); }
export function call_gap_ms(p: usize): i32 { return load<i32>(p, F_GAP) / 8; }
export function call_item_ptr(p: usize): usize { return p + F_ITEM; }
export function call_item_len(p: usize): i32 { return load<i32>(p, F_ITEM_LEN); }
export function call_queued_bytes(p: usize): i32 { return ring_available(load<usize>(p, F_RING)); }

/** Sets the streamSid (JSON-escaped, from IN_MSG[0..len)) used in outbound media messages. */
export function call_set_stream_sid(p: usize, len: i32): bool {
  const need = MEDIA_PREFIX_A_LEN + len + MEDIA_PREFIX_B_LEN;
  if (len < 0 || need > PREFIX_CAP) return false;
  const dst = p + F_PREFIX;
  memory.copy(dst, MEDIA_PREFIX_A, MEDIA_PREFIX_A_LEN);
  memory.copy(dst + MEDIA_PREFIX_A_LEN, IN_MSG, len);
  memory.copy(dst + MEDIA_PREFIX_A_LEN + len, MEDIA_PREFIX_B, MEDIA_PREFIX_B_LEN);
  store<i32>(p, need, F_PREFIX_LEN);
  return true;
}

function bytesEqual(a: usize, b: usize, n: i32): bool {
  return memory.compare(a, b, <usize>n) == 0;
}

function parseDigits(at: usize, n: i32): i32 {
  if (n <= 0 || n > 9) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = <i32>load<u8>(at + <usize>i) - 48;
    if (<u32>c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

// ---- inbound: Twilio media -> model append ------------------------------------------------------

/**
 * Processes the Twilio message in IN_MSG[0..len). For a media message, writes the model's append
 * message to OUT_MSG (call_out_len) and returns the VAD flags of its audio (bit0 speech,
 * bit1 onset, bit2 offset); otherwise a negative ERR_* code and nothing is consumed.
 */
export function call_inbound_message(p: usize, len: i32, botPlaying: i32): i32 {
  outLen = 0;
  // One pass finds all three; each result is what its own json_find_string would give.
  json_find_strings(IN_MSG, len, MEDIA_KEYS, 3);
  const ev = json_found(EVENT_K);
  if (ev < 0) return ev == -2 ? ERR_NEEDS_PARSE : ERR_NOT_MEDIA;
  if (json_found_len(EVENT_K) != 5 || !bytesEqual(IN_MSG + <usize>ev, VAL_MEDIA, 5)) return ERR_NOT_MEDIA;
  const pay = json_found(PAYLOAD_K);
  if (pay < 0) return ERR_NEEDS_PARSE;
  const payLen = json_found_len(PAYLOAD_K);
  const tsAt = json_found(TIMESTAMP_K);
  if (tsAt < 0) return ERR_NEEDS_PARSE;
  const ts = parseDigits(IN_MSG + <usize>tsAt, json_found_len(TIMESTAMP_K));
  if (ts < 0) return ERR_NEEDS_PARSE;
  return inboundPayload(p, IN_MSG + <usize>pay, payLen, ts, botPlaying);
}

/**
 * The same for a payload the caller already extracted (the JSON.parse fallback): base64 in
 * IN_MSG[0..len), `timestamp` in ms or -1 if unknown.
 */
export function call_inbound_payload(p: usize, len: i32, ts: i32, botPlaying: i32): i32 {
  outLen = 0;
  return inboundPayload(p, IN_MSG, len, ts, botPlaying);
}

function inboundPayload(p: usize, b64: usize, b64Len: i32, ts: i32, botPlaying: i32): i32 {
  if (b64Len > (MAX_PAYLOAD_BYTES + 2) / 3 * 4) return ERR_TOO_LARGE;
  // Silence for a timestamp gap goes first, so the model hears the caller in real time. The
  // timeline is kept in samples, so payloads that are not whole milliseconds do not drift.
  let gap = 0;
  const next = load<i64>(p, F_NEXT_TS);
  const at: i64 = ts >= 0 ? <i64>ts * 8 : -1;
  if (at >= 0 && next >= 0 && at > next) gap = <i32>min<i64>(at - next, <i64>MAX_GAP_BYTES);
  const n = b64_decode(b64, b64Len, MULAW_BUF + <usize>gap);
  if (n < 0) return ERR_BASE64;
  if (gap > 0) {
    memory.fill(MULAW_BUF, 0xFF, <usize>gap);
    store<i32>(p, load<i32>(p, F_GAP) + gap, F_GAP);
  }
  // The expected start only moves forward: a duplicate or late message must not make the one
  // after it look like it follows a gap. A jump back of more than the gap cap is a new
  // timeline (a bogus forward timestamp must not switch gap filling off for the rest of the call).
  // A message without a timestamp still occupies its length of the timeline.
  if (at >= 0) {
    const end = at + <i64>n;
    if (next < 0 || end > next || at < next - <i64>MAX_GAP_BYTES) store<i64>(p, end, F_NEXT_TS);
  } else if (next >= 0) {
    store<i64>(p, next + <i64>n, F_NEXT_TS);
  }
  const total = gap + n;
  ulaw_decode_block(MULAW_BUF, PCM8_BUF, total);
  const flags = vad_process(load<usize>(p, F_VAD), PCM8_BUF, total, botPlaying);

  memory.copy(OUT_MSG, APPEND_PREFIX, APPEND_PREFIX_LEN);
  let w = APPEND_PREFIX_LEN;
  if (load<i32>(p, F_MODE) == MODE_PCM24) {
    const m = resampler_process(load<usize>(p, F_UP), PCM8_BUF, total, PCM24_BUF);
    w += b64_encode(PCM24_BUF, m * 2, OUT_MSG + <usize>w);
  } else {
    w += b64_encode(MULAW_BUF, total, OUT_MSG + <usize>w);
  }
  store<u8>(OUT_MSG + <usize>w, 0x22); // "
  store<u8>(OUT_MSG + <usize>w, 0x7D, 1); // }
  outLen = w + 2;
  return flags;
}

// ---- outbound: model delta -> mu-law ring -> Twilio media frames --------------------------------

/**
 * Queues the audio of the `response.output_audio.delta` message in IN_MSG[0..len). Returns the
 * mu-law bytes queued (| DELTA_NEW_ITEM when the item id changed), DELTA_DROPPED for audio of an
 * item cut by barge-in, or a negative ERR_* code.
 */
export function call_outbound_message(p: usize, len: i32): i32 {
  json_find_strings(IN_MSG, len, DELTA_KEYS, 3);
  const t = json_found(TYPE_K);
  if (t < 0) return t == -2 ? ERR_NEEDS_PARSE : ERR_NOT_MEDIA;
  if (json_found_len(TYPE_K) != 27 || !bytesEqual(IN_MSG + <usize>t, VAL_DELTA, 27)) return ERR_NOT_MEDIA;
  let newItem = 0;
  const it = json_found(ITEM_ID_K);
  if (it == -2) return ERR_NEEDS_PARSE;
  if (it >= 0) {
    const itLen = json_found_len(ITEM_ID_K);
    const dropLen = load<i32>(p, F_DROP_LEN);
    if (dropLen > 0 && itLen == dropLen && bytesEqual(IN_MSG + <usize>it, p + F_DROP, itLen)) return DELTA_DROPPED;
    if (itLen > ID_CAP) return ERR_NEEDS_PARSE;
    const curLen = load<i32>(p, F_ITEM_LEN);
    if (itLen != curLen || !bytesEqual(IN_MSG + <usize>it, p + F_ITEM, itLen)) {
      memory.copy(p + F_ITEM, IN_MSG + <usize>it, <usize>itLen);
      store<i32>(p, itLen, F_ITEM_LEN);
      store<i32>(p, -1, F_CARRY);
      newItem = DELTA_NEW_ITEM;
    }
  }
  const d = json_found(DELTA_K);
  if (d < 0) return ERR_NEEDS_PARSE;
  const r = outboundAudio(p, IN_MSG + <usize>d, json_found_len(DELTA_K));
  return r < 0 ? r : r | newItem;
}

/** Queues base64 model audio already extracted into IN_MSG[0..len) (the JSON.parse fallback). */
export function call_outbound_audio(p: usize, len: i32): i32 {
  return outboundAudio(p, IN_MSG, len);
}

function outboundAudio(p: usize, b64: usize, b64Len: i32): i32 {
  if ((b64Len & 3) != 0) return ERR_BASE64;
  const ring = load<usize>(p, F_RING);
  const pcm24 = load<i32>(p, F_MODE) == MODE_PCM24;
  let queued = 0;
  for (let off = 0; off < b64Len; off += DELTA_CHUNK_CHARS) {
    const chunk = min(DELTA_CHUNK_CHARS, b64Len - off);
    if (pcm24) {
      // PCM16 samples may straddle deltas: a carried odd byte goes just in front of this chunk.
      // Decoding at an even address keeps the usual (no carry) case aligned; with a carry the
      // samples start at an odd address, which wasm loads handle (alignment is only a hint).
      const carry = load<i32>(p, F_CARRY);
      const at = PCM24_BUF + 2;
      const n = b64_decode(b64 + <usize>off, chunk, at);
      if (n < 0) return ERR_BASE64;
      let start = at;
      let bytes = n;
      if (carry >= 0) { start = at - 1; store<u8>(start, <u8>carry); bytes++; }
      if (bytes & 1) { store<i32>(p, <i32>load<u8>(start + <usize>(bytes - 1)), F_CARRY); bytes--; }
      else store<i32>(p, -1, F_CARRY);
      const m = resampler_process(load<usize>(p, F_DOWN), start, bytes >> 1, PCM8_BUF);
      ulaw_encode_block(PCM8_BUF, MULAW_BUF, m);
      queued += ring_write(ring, MULAW_BUF, m);
    } else {
      const n = b64_decode(b64 + <usize>off, chunk, MULAW_BUF);
      if (n < 0) return ERR_BASE64;
      queued += ring_write(ring, MULAW_BUF, n);
    }
  }
  return queued;
}

/**
 * Barge-in: forgets the queued audio and ignores further deltas of the current item. The
 * resampler restarts so no tail of the cut audio leaks into the next response.
 */
export function call_drop_current_item(p: usize): void {
  const itLen = load<i32>(p, F_ITEM_LEN);
  // A second drop with no new item since must not forget the item dropped first: its late
  // deltas are still on the way.
  if (itLen > 0) {
    memory.copy(p + F_DROP, p + F_ITEM, <usize>itLen);
    store<i32>(p, itLen, F_DROP_LEN);
  }
  store<i32>(p, 0, F_ITEM_LEN);
  store<i32>(p, -1, F_CARRY);
  ring_clear(load<usize>(p, F_RING));
  const down = load<usize>(p, F_DOWN);
  if (down != 0) resampler_reset(down);
}

/**
 * Pops up to one 20 ms frame of queued audio and writes a ready-to-send Twilio media message to
 * OUT_FRAME. Returns its length, or 0 when less than a frame is queued and `allowPartial` is 0,
 * or no streamSid is set yet (nothing is consumed then; call_frame_bytes tells how much audio
 * the frame carries).
 */
export function call_outbound_frame(p: usize, allowPartial: i32): i32 {
  const ring = load<usize>(p, F_RING);
  const avail = ring_available(ring);
  frameBytes = 0;
  frameEnergyDb = -100;
  const prefixLen = load<i32>(p, F_PREFIX_LEN);
  if (prefixLen == 0) return 0;
  if (avail == 0 || (avail < FRAME_BYTES && allowPartial == 0)) return 0;
  const n = min(avail, FRAME_BYTES);
  ring_read(ring, MULAW_BUF, n);
  memory.copy(OUT_FRAME, p + F_PREFIX, <usize>prefixLen);
  let w = prefixLen + b64_encode(MULAW_BUF, n, OUT_FRAME + <usize>prefixLen);
  store<u8>(OUT_FRAME + <usize>w, 0x22);     // "
  store<u8>(OUT_FRAME + <usize>w, 0x7D, 1);  // }
  store<u8>(OUT_FRAME + <usize>w, 0x7D, 2);  // }
  frameBytes = n;
  frameEnergyDb = frameEnergy(n);
  return w + 3;
}

/**
 * Level of the frame just built, as the caller's VAD would measure it (20 ms energy, dBFS, >= -100):
 * the bridge's echo gate compares the inbound level with what the bot played, and measuring here
 * costs a decode and a dot product instead of decoding the message again from JS.
 */
function frameEnergy(n: i32): f32 {
  ulaw_decode_block(MULAW_BUF, PCM8_BUF, n);
  let acc = i64x2.splat(0);
  const vecBytes = (n & ~7) << 1;
  for (let i = 0; i < vecBytes; i += 16) {
    const v = v128.load(PCM8_BUF + <usize>i);
    // a*a + b*b <= 2^31 per lane: exact when widened unsigned (see vad.ts sumSquares80).
    const d = i32x4.dot_i16x8_s(v, v);
    acc = i64x2.add(acc, i64x2.extend_low_i32x4_u(d));
    acc = i64x2.add(acc, i64x2.extend_high_i32x4_u(d));
  }
  let sum = i64x2.extract_lane(acc, 0) + i64x2.extract_lane(acc, 1);
  for (let i = n & ~7; i < n; i++) {
    const x = <i64>load<i16>(PCM8_BUF + (<usize>i << 1));
    sum += x * x;
  }
  const db = <f32>(10.0 * Math.log10(<f64>sum / (<f64>n * 1073741824.0) + 1e-10));
  return db < -100 ? -100 : db;
}

/** Energy of the frame built by the last call_outbound_frame, dBFS (-100 for none). */
export function call_frame_energy_db(): f32 { return frameEnergyDb; }

/** Room left in the outbound ring, in mu-law bytes. */
export function call_queue_space(p: usize): i32 { return ring_space(load<usize>(p, F_RING)); }

/** Resets per-call state for reuse (a new stream on the same state). */
export function call_reset(p: usize): void {
  const up = load<usize>(p, F_UP);
  const down = load<usize>(p, F_DOWN);
  if (up != 0) resampler_reset(up);
  if (down != 0) resampler_reset(down);
  vad_reset(load<usize>(p, F_VAD));
  ring_clear(load<usize>(p, F_RING));
  store<i64>(p, -1, F_NEXT_TS);
  store<i32>(p, 0, F_GAP);
  store<i32>(p, -1, F_CARRY);
  store<i32>(p, 0, F_ITEM_LEN);
  store<i32>(p, 0, F_DROP_LEN);
}
