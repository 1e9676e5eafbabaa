// What every simulated caller says, and how the model recognises which call an append belongs to.
//
// The bridge only forwards audio to the model (no call id, no sequence numbers), so the call id
// travels in the audio itself: after a short silent warm-up, each call sends a header of
// 20 ms frames that are either loud (a 1 kHz tone) or digital silence:
//   [start: loud] [ID_BITS frames: id bits, MSB first] [ID_BITS frames: the same bits inverted]
// Frame energy survives every bridge's processing (mu-law passthrough, or decode + resampling to
// 24 kHz), so the model side can decode the id from its appends, check it against the inverted
// copy, and from then on pair its k-th append with the call's (header start + k)-th frame. One
// append per inbound frame is the contract of all three bridges once the model socket is open.
//
// Timeline of a measured call (frames of 20 ms):
//   0 .. WARMUP-1            silence (the bridge connects its model session meanwhile)
//   WARMUP .. +HEADER-1      id header (also a caller "utterance": the model's VAD commits it
//                            500 ms after it ends and starts answering with the bot audio)
//   ...                      silence while the bot talks
//   bargeAt .. +BARGE-1      loud speech burst (barge-in), if the call is long enough
//   ...                      silence until the end, then `stop`
import { encodeMulaw } from '../dsp/g711.js';

export const FRAME_MS = 20;
export const FRAME_BYTES = 160;
export const ID_BITS = 14;
export const ID_SPACE = 1 << ID_BITS;
export const HEADER_FRAMES = 1 + 2 * ID_BITS;
export const WARMUP_FRAMES = 20;
export const BARGE_FRAMES = 15;
/** Frames a soak call's short burst lasts (no id header: soak calls are not matched). */
const SOAK_BURST_AT = 5;
const SOAK_BURST_FRAMES = 10;

function tone(hz: number, amplitude: number, samples: number, rate: number): Int16Array {
  const out = new Int16Array(samples);
  for (let i = 0; i < samples; i++) out[i] = Math.round(Math.sin((2 * Math.PI * hz * i) / rate) * amplitude);
  return out;
}

// 1 kHz and 400 Hz both repeat exactly every 20 ms at 8 kHz, so one frame serves every frame.
export const SILENCE_B64 = Buffer.alloc(FRAME_BYTES, 0xff).toString('base64');
export const LOUD_B64 = Buffer.from(encodeMulaw(tone(1000, 8000, FRAME_BYTES, 8000))).toString('base64');
export const SPEECH_B64 = Buffer.from(encodeMulaw(tone(400, 12000, FRAME_BYTES, 8000))).toString('base64');

/** The bot's voice the local model answers with: a 440 Hz tone, 24 kHz PCM16. */
export function botAudio(seconds: number): Int16Array {
  return tone(440, 6000, Math.round(seconds * 24000), 24000);
}

export type FrameKind = 0 | 1 | 2; // silence, loud (header), speech (barge-in / soak burst)

export interface CallPlan {
  totalFrames: number;
  /** Frame index of the header's start frame, or -1 (soak calls carry no id). */
  headerAt: number;
  /** First frame of the barge-in burst, or -1. */
  bargeAt: number;
  /** Payload kind of each frame. */
  kinds: Uint8Array;
}

/** The frames of one call: id header (measured calls) or a short burst (soak), optional barge-in. */
export function planCall(id: number, seconds: number, opts: { measure: boolean; bargeIn: boolean }): CallPlan {
  const totalFrames = Math.max(1, Math.round((seconds * 1000) / FRAME_MS));
  const kinds = new Uint8Array(totalFrames);
  let headerAt = -1;
  let bargeAt = -1;
  if (opts.measure) {
    headerAt = WARMUP_FRAMES;
    const bits = headerBits(id);
    for (let i = 0; i < bits.length && headerAt + i < totalFrames; i++) kinds[headerAt + i] = bits[i];
    // The bot answers ~500 ms after the header; barge in 1 s before the end once it has talked a while.
    const answerAt = headerAt + HEADER_FRAMES + 26;
    const at = totalFrames - 50;
    if (opts.bargeIn && at >= answerAt + 20) bargeAt = at;
  } else {
    for (let i = SOAK_BURST_AT; i < SOAK_BURST_AT + SOAK_BURST_FRAMES && i < totalFrames; i++) kinds[i] = 2;
  }
  if (bargeAt >= 0) for (let i = bargeAt; i < bargeAt + BARGE_FRAMES && i < totalFrames; i++) kinds[i] = 2;
  return { totalFrames, headerAt, bargeAt, kinds };
}

/** 1 = loud frame, 0 = silent frame: start, id bits, inverted id bits. */
export function headerBits(id: number): Uint8Array {
  const out = new Uint8Array(HEADER_FRAMES);
  out[0] = 1;
  for (let b = 0; b < ID_BITS; b++) {
    const bit = (id >> (ID_BITS - 1 - b)) & 1;
    out[1 + b] = bit;
    out[1 + ID_BITS + b] = bit ^ 1;
  }
  return out;
}

// ---- model side: loudness of an append and the header decoder ---------------------------------

const B64 = new Int16Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((ch, i) => { B64[ch.charCodeAt(0)] = i; });

const ULAW_MAG = new Int16Array(256);
for (let c = 0; c < 256; c++) {
  const u = ~c & 0xff;
  ULAW_MAG[c] = ((((u & 15) << 3) + 0x84) << ((u >> 4) & 7)) - 0x84;
}

/** Where in the payload the probes sit: past the first 30%, which a resampler's delay can fill
 * with the end of the previous frame, so a silent frame after a loud one still reads silent. */
const PROBE_AT = [0.3, 0.42, 0.54, 0.66, 0.78, 0.9];
const probeValues = new Float64Array(PROBE_AT.length);
/** 24 base64 characters = 18 bytes: 9 PCM16 samples (3/8 of a 1 kHz period at 24 kHz after any
 * upsampling of 3 source samples) or 18 mu-law codes. */
const PROBE_CHARS = 24;
const probeBytes = new Uint8Array((PROBE_CHARS / 4) * 3);

/**
 * Loudness of an append's base64 audio, read straight from the message bytes (no decode of the
 * whole payload: the model process does this for every append): the median of 6 probes of 24
 * base64 characters (18 bytes: 9 PCM16 samples or 18 mu-law codes) each, spread over the last
 * 70% of the payload. A steady tone gives thousands; digital silence 0; a frame whose first
 * milliseconds carry the previous frame's tail (a resampler's delay, up to ~10 ms) stays what it is.
 */
export function probeLoudness(msg: Uint8Array, from: number, to: number, format: 'pcm24k' | 'pcmu'): number {
  const groups = Math.floor((to - from) / PROBE_CHARS);
  if (groups <= 0) return 0;
  const b = probeBytes;
  let n = 0;
  for (const frac of PROBE_AT) {
    const at = from + Math.min(groups - 1, Math.floor(frac * groups)) * PROBE_CHARS;
    let ok = true;
    for (let q = 0; q < PROBE_CHARS / 4; q++) {
      const c0 = B64[msg[at + q * 4]], c1 = B64[msg[at + q * 4 + 1]], c2 = B64[msg[at + q * 4 + 2]], c3 = B64[msg[at + q * 4 + 3]];
      if ((c0 | c1 | c2 | c3) < 0) { ok = false; break; }
      const v = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3;
      b[q * 3] = v >> 16; b[q * 3 + 1] = (v >> 8) & 255; b[q * 3 + 2] = v & 255;
    }
    if (!ok) continue;
    let sum = 0;
    if (format === 'pcmu') {
      for (let i = 0; i < b.length; i++) sum += ULAW_MAG[b[i]];
      probeValues[n++] = sum / b.length;
    } else {
      for (let i = 0; i < b.length; i += 2) sum += Math.abs(((b[i + 1] << 24) >> 16) | b[i]);
      probeValues[n++] = sum / (b.length / 2);
    }
  }
  if (n === 0) return 0;
  const v = probeValues.subarray(0, n).sort();
  return n & 1 ? v[n >> 1] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/** Loudness above which a frame counts as loud (the tones give ~5000-8000, silence 0). */
export const LOUD_THRESHOLD = 2000;

/**
 * Feeds appends' loudness in order; finds the first loud append (the start frame) and decodes the
 * id from the next 2 x ID_BITS appends. `done` with `id` -1 when the check bits disagree.
 */
export class HeaderDecoder {
  /** Index (among this session's appends) of the start frame; -1 until seen. */
  start = -1;
  id = -1;
  done = false;
  private count = 0;
  private readonly bits = new Uint8Array(2 * ID_BITS);
  private got = 0;

  push(loud: boolean): void {
    const index = this.count++;
    if (this.done) return;
    if (this.start < 0) {
      if (loud) this.start = index;
      return;
    }
    this.bits[this.got++] = loud ? 1 : 0;
    if (this.got < 2 * ID_BITS) return;
    this.done = true;
    let id = 0;
    for (let b = 0; b < ID_BITS; b++) {
      if (this.bits[b] === this.bits[ID_BITS + b]) return; // check bits disagree: id stays -1
      id = (id << 1) | this.bits[b];
    }
    this.id = id;
  }
}
