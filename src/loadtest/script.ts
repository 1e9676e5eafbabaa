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

const PROBES = 6;

/**
 * Mean |sample| of a few probes of an append's base64 audio, read straight from the message bytes
 * (no decode of the whole payload: the model process does this for every append). Each probe is 8
 * base64 characters = 6 bytes = 3 PCM16 samples or 6 mu-law codes, spread over the payload; a
 * steady tone gives thousands, digital silence 0.
 */
export function probeLoudness(msg: Uint8Array, from: number, to: number, format: 'pcm24k' | 'pcmu'): number {
  const groups = Math.floor((to - from) / 8);
  if (groups <= 0) return 0;
  let sum = 0;
  let n = 0;
  const b = new Uint8Array(6);
  for (let p = 0; p < PROBES; p++) {
    const at = from + Math.floor(((p + 0.5) * groups) / PROBES) * 8;
    let ok = true;
    for (let q = 0; q < 2; q++) {
      const c0 = B64[msg[at + q * 4]], c1 = B64[msg[at + q * 4 + 1]], c2 = B64[msg[at + q * 4 + 2]], c3 = B64[msg[at + q * 4 + 3]];
      if ((c0 | c1 | c2 | c3) < 0) { ok = false; break; }
      const v = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3;
      b[q * 3] = v >> 16; b[q * 3 + 1] = (v >> 8) & 255; b[q * 3 + 2] = v & 255;
    }
    if (!ok) continue;
    if (format === 'pcmu') {
      for (let i = 0; i < 6; i++, n++) sum += ULAW_MAG[b[i]];
    } else {
      for (let i = 0; i < 6; i += 2, n++) sum += Math.abs(((b[i + 1] << 24) >> 16) | b[i]);
    }
  }
  return n ? sum / n : 0;
}

/** Mean |x| above which a frame counts as loud (the tone gives ~5000, silence ~0). */
export const LOUD_THRESHOLD = 1200;

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
