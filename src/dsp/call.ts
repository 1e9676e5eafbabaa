// Typed handle over one call's DSP state (assembly/call.ts). The bridge copies message bytes in
// and sends the bytes written out; it never touches samples. Views made here stay valid for the
// call's lifetime because memory only grows in `new CallDsp()` (dsp_alloc), never per frame.
import { VAD_DEFAULTS, type VadParams } from './vad.js';
import { loadDsp, type DspExports } from './wasm.js';

export type { VadParams };

export type ModelAudioFormat = 'pcm24k' | 'pcmu';

export const VAD_SPEECH = 1;
export const VAD_ONSET = 2;
export const VAD_OFFSET = 4;

export const ERR_NOT_MEDIA = -1;
export const ERR_NEEDS_PARSE = -2;
export const ERR_BASE64 = -3;
export const ERR_TOO_LARGE = -4;
export const DELTA_DROPPED = -6;
export const DELTA_NEW_ITEM = 1 << 30;

export const FRAME_BYTES = 160;
export const FRAME_MS = 20;

interface CallExports extends DspExports {
  call_new(mode: number, ringBytes: number): number;
  call_free(p: number): void;
  call_reset(p: number): void;
  call_in_ptr(): number;
  call_in_cap(): number;
  call_out_ptr(): number;
  call_out_len(): number;
  call_frame_ptr(): number;
  call_frame_bytes(): number;
  call_vad(p: number): number;
  call_ring(p: number): number;
  ring_skip(p: number, n: number): number;
  call_gap_ms(p: number): number;
  call_item_ptr(p: number): number;
  call_item_len(p: number): number;
  call_queued_bytes(p: number): number;
  call_queue_space(p: number): number;
  call_set_stream_sid(p: number, len: number): number;
  call_inbound_message(p: number, len: number, botPlaying: number): number;
  call_inbound_payload(p: number, len: number, ts: number, botPlaying: number): number;
  call_outbound_message(p: number, len: number): number;
  call_outbound_audio(p: number, len: number): number;
  call_drop_current_item(p: number): void;
  call_outbound_frame(p: number, allowPartial: number): number;
  vad_set_params(p: number, thresholdDb: number, minSpeechMs: number, hangoverMs: number,
    botThresholdDb: number, botMinSpeechMs: number): void;
  vad_energy_db(p: number): number;
  vad_floor_db(p: number): number;
  call_frame_energy_db(): number;
}

/** Per-thread scratch shared by every call on this thread (one message is in flight at a time). */
class Scratch {
  readonly ex: CallExports;
  readonly inBytes: Uint8Array;
  readonly inBuf: Buffer;
  readonly outBytes: Uint8Array;
  readonly frameBytes: Uint8Array;
  // The usual frame sizes repeat, so their views are cached instead of made per message.
  private outView: Uint8Array;
  private frameView: Uint8Array;

  constructor() {
    this.ex = loadDsp() as CallExports;
    const mem = this.ex.memory.buffer;
    const cap = this.ex.call_in_cap();
    this.inBytes = new Uint8Array(mem, this.ex.call_in_ptr(), cap);
    this.inBuf = Buffer.from(mem, this.ex.call_in_ptr(), cap);
    this.outBytes = new Uint8Array(mem, this.ex.call_out_ptr(), 256 * 1024);
    this.frameBytes = new Uint8Array(mem, this.ex.call_frame_ptr(), 1024);
    this.outView = this.outBytes.subarray(0, 0);
    this.frameView = this.frameBytes.subarray(0, 0);
  }

  out(len: number): Uint8Array {
    if (this.outView.length !== len) this.outView = this.outBytes.subarray(0, len);
    return this.outView;
  }

  frame(len: number): Uint8Array {
    if (this.frameView.length !== len) this.frameView = this.frameBytes.subarray(0, len);
    return this.frameView;
  }
}

let scratch: Scratch | undefined;
let scratchBuffer: ArrayBuffer | undefined;

function getScratch(): Scratch {
  const mem = loadDsp().memory.buffer;
  // Views detach if memory grew (a call started); rebuild them once then.
  if (!scratch || scratchBuffer !== mem) {
    scratch = new Scratch();
    scratchBuffer = mem;
  }
  return scratch;
}

/** The VAD kernel's own defaults (one source: src/dsp/vad.ts). */
export const DEFAULT_VAD: Readonly<VadParams> = VAD_DEFAULTS;

export interface CallDspOptions {
  format: ModelAudioFormat;
  /** Outbound queue, in seconds of bot audio (8000 mu-law bytes each). */
  queueSeconds?: number;
  vad?: Partial<VadParams>;
}

export class CallDsp {
  private readonly ex: CallExports;
  private ptr: number;
  readonly format: ModelAudioFormat;
  private vad: VadParams = { ...DEFAULT_VAD };

  constructor(opts: CallDspOptions) {
    this.ex = loadDsp() as CallExports;
    this.format = opts.format;
    // At least one frame (the kernel enforces it too); a non-number falls back to the default.
    const seconds = Number.isFinite(opts.queueSeconds) ? (opts.queueSeconds as number) : 30;
    const ringBytes = Math.max(FRAME_BYTES, Math.min(2 ** 30, Math.round(seconds * 8000)));
    this.ptr = this.ex.call_new(opts.format === 'pcmu' ? 1 : 0, ringBytes);
    if (opts.vad) this.setVad(opts.vad);
  }

  get freed(): boolean { return this.ptr === 0; }

  // After free() the state pointer is 0 and the kernels would write over static data shared by
  // every call on this thread: feeding audio then is a bug and throws; queries answer "empty".
  private live(): number {
    if (this.ptr === 0) throw new Error('CallDsp used after free()');
    return this.ptr;
  }

  /** Changes some VAD parameters; the others keep their current values (initially DEFAULT_VAD). */
  setVad(v: Partial<VadParams>): void {
    if (this.ptr === 0) return;
    const d = { ...this.vad, ...v };
    this.vad = d;
    this.ex.vad_set_params(this.ex.call_vad(this.ptr), d.thresholdDb, d.minSpeechMs, d.hangoverMs,
      d.botThresholdDb, d.botMinSpeechMs);
  }

  /** Sets the streamSid written into outbound media messages. */
  setStreamSid(sid: string): boolean {
    if (this.ptr === 0) return false;
    const s = getScratch();
    const escaped = JSON.stringify(sid).slice(1, -1);
    const len = s.inBuf.write(escaped, 0, 'utf8');
    return this.ex.call_set_stream_sid(this.ptr, len) === 1;
  }

  /**
   * Feeds one Twilio text message (raw bytes). Returns VAD flags and the model append bytes for a
   * media message, or ERR_NOT_MEDIA / ERR_NEEDS_PARSE / ERR_BASE64 / ERR_TOO_LARGE.
   */
  inboundMessage(msg: Uint8Array, botPlaying: boolean): number {
    const s = getScratch();
    if (msg.length > s.inBytes.length) return ERR_TOO_LARGE;
    s.inBytes.set(msg);
    return this.ex.call_inbound_message(this.live(), msg.length, botPlaying ? 1 : 0);
  }

  /**
   * The slow path: a base64 payload the caller extracted with JSON.parse. `timestampMs` that is
   * not a whole number in [0, 2^31) (NaN from a missing field, say) counts as unknown: the
   * payload then just follows the previous one, with no gap filling.
   */
  inboundPayload(b64: string, timestampMs: number, botPlaying: boolean): number {
    const p = this.live();
    const s = getScratch();
    if (b64.length > s.inBytes.length) return ERR_TOO_LARGE;
    // utf8, not latin1: a non-ASCII character must stay invalid rather than fold onto a base64 one.
    const len = s.inBuf.write(b64, 0, 'utf8');
    if (len !== b64.length) return ERR_BASE64;
    const ts = Number.isInteger(timestampMs) && timestampMs >= 0 && timestampMs < 2 ** 31 ? timestampMs : -1;
    return this.ex.call_inbound_payload(p, len, ts, botPlaying ? 1 : 0);
  }

  /** The append message written by the last inbound call (view into WASM memory). */
  appendMessage(): Uint8Array {
    return getScratch().out(this.ex.call_out_len());
  }

  /** Feeds a raw model `response.output_audio.delta` message; see DELTA_* and ERR_*. */
  outboundMessage(msg: Uint8Array): number {
    const s = getScratch();
    if (msg.length > s.inBytes.length) return ERR_TOO_LARGE;
    s.inBytes.set(msg);
    return this.ex.call_outbound_message(this.live(), msg.length);
  }

  /** The slow path for a delta too large or unusual for the scan: base64 audio in chunks. */
  outboundAudio(b64: string): number {
    const p = this.live();
    const s = getScratch();
    const chunk = s.inBytes.length & ~3;
    let queued = 0;
    for (let off = 0; off < b64.length; off += chunk) {
      const part = b64.length <= chunk ? b64 : b64.slice(off, off + chunk);
      const len = s.inBuf.write(part, 0, 'utf8');
      if (len !== part.length) return ERR_BASE64;
      const r = this.ex.call_outbound_audio(p, len);
      if (r < 0) return r;
      queued += r;
    }
    return queued;
  }

  /** Item id of the audio being queued (read once per item, when DELTA_NEW_ITEM is set). */
  currentItemId(): string {
    if (this.ptr === 0) return '';
    const len = this.ex.call_item_len(this.ptr);
    // The raw JSON bytes of the id (escaped ids take the parse path), so UTF-8.
    return Buffer.from(this.ex.memory.buffer, this.ex.call_item_ptr(this.ptr), len).toString('utf8');
  }

  /**
   * Builds the next outbound Twilio media message (a view valid until the next call into this
   * module), or returns null if not enough is queued or no streamSid is set.
   */
  nextFrame(allowPartial: boolean): Uint8Array | null {
    if (this.ptr === 0) return null;
    const len = this.ex.call_outbound_frame(this.ptr, allowPartial ? 1 : 0);
    return len === 0 ? null : getScratch().frame(len);
  }

  /** Audio bytes (8 kHz mu-law, 8 per ms) in the frame built by the last nextFrame. */
  lastFrameBytes(): number { return this.ex.call_frame_bytes(); }

  /** Drops up to `bytes` of the oldest queued bot audio (backpressure policy); returns how many. */
  dropOldest(bytes: number): number {
    return this.ptr === 0 ? 0 : this.ex.ring_skip(this.ex.call_ring(this.ptr), bytes);
  }

  /** Level of the frame built by the last nextFrame (20 ms energy, dBFS, -100 for none). */
  lastFrameEnergyDb(): number { return this.ex.call_frame_energy_db(); }

  /** The caller VAD's noise floor estimate, dBFS. */
  vadFloorDb(): number { return this.ptr === 0 ? -100 : this.ex.vad_floor_db(this.ex.call_vad(this.ptr)); }

  /**
   * Sets every VAD parameter at once without allocating: the echo gate retunes the bot-mode
   * threshold per inbound frame. setVad() is the friendlier form for call setup.
   */
  setVadParams(thresholdDb: number, minSpeechMs: number, hangoverMs: number, botThresholdDb: number,
    botMinSpeechMs: number): void {
    if (this.ptr === 0) return;
    const v = this.vad; // our own copy: updated in place so a later setVad() merges over these
    v.thresholdDb = thresholdDb;
    v.minSpeechMs = minSpeechMs;
    v.hangoverMs = hangoverMs;
    v.botThresholdDb = botThresholdDb;
    v.botMinSpeechMs = botMinSpeechMs;
    this.ex.vad_set_params(this.ex.call_vad(this.ptr), thresholdDb, minSpeechMs, hangoverMs, botThresholdDb,
      botMinSpeechMs);
  }

  queuedBytes(): number { return this.ptr === 0 ? 0 : this.ex.call_queued_bytes(this.ptr); }
  queueSpace(): number { return this.ptr === 0 ? 0 : this.ex.call_queue_space(this.ptr); }
  gapMs(): number { return this.ptr === 0 ? 0 : this.ex.call_gap_ms(this.ptr); }
  lastEnergyDb(): number { return this.ptr === 0 ? -100 : this.ex.vad_energy_db(this.ex.call_vad(this.ptr)); }

  /**
   * Barge-in: drops queued audio and ignores later deltas of the current item (also when called
   * again before a new item started: the first dropped item stays dropped).
   */
  dropCurrentItem(): void { if (this.ptr !== 0) this.ex.call_drop_current_item(this.ptr); }

  free(): void {
    if (this.ptr !== 0) {
      this.ex.call_free(this.ptr);
      this.ptr = 0;
    }
  }
}

