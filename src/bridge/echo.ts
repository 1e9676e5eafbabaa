// Speakerphone echo vs barge-in. On a speakerphone the bot's own voice comes back on the inbound
// track, delayed (network + room, ~100-300 ms) and attenuated (the echo return loss, ~10-20 dB on
// the fixtures). An energy VAD cannot tell that echo from a caller by itself; the bridge can,
// because it knows what it played and when.
//
// So while bot audio played within the last `windowMs` (ECHO_TAIL_MS), the VAD's onset threshold
// is lifted to the loudest bot frame of that window minus `marginDb` (the echo return loss we
// assume, minus a safety margin), never below its normal threshold above the noise floor:
//     on = max(floor + thresholdDb, refMax - marginDb)
// The echo of a frame is at most refMax - ERL, so with ERL > marginDb it stays under; a caller
// louder than that is heard as fast as without a bot (same minimum speech). When the bot is
// quiet, or stopped more than windowMs ago, the threshold is the normal one: no fixed "bot mode"
// penalty. Measured trade-off: test/e2e/tools/echo-sweep.ts, summarised in test/e2e/echo.test.ts.
//
// The reference level of each outbound frame is measured in the DSP core while it builds the
// frame (call_frame_energy_db: the same 20 ms energy the caller's VAD measures); the play time of
// each frame is the pacer's estimate (when Twilio's buffer reaches it). No JS loop over samples,
// no allocation per frame.
import type { CallDsp } from '../dsp/call.js';

/** Default for ECHO_MARGIN_DB: see test/e2e/tools/echo-sweep.ts (8 rejects a 10 dB echo return loss). */
export const DEFAULT_ECHO_MARGIN_DB = 8;

/**
 * Bot audio remembered, as intervals of play time with their loudest level: one per frame
 * normally (the window plus the pacer's lead is ~25 frames). When more is in flight (a long
 * answer handed to Twilio in one burst) the newest interval absorbs the excess: coarser and
 * louder than the truth when it comes to play, so on the safe side (never deaf to its echo).
 */
const SLOTS = 64;
const SILENT_DB = -100;

export interface EchoGateOptions {
  /** How long after a bot frame played its echo may still arrive (ECHO_TAIL_MS). */
  windowMs: number;
  /** Assumed echo return loss minus a safety margin, dB below the bot's loudest recent frame. */
  marginDb: number;
  /** The VAD's normal onset threshold above its noise floor, dB. */
  thresholdDb: number;
  minSpeechMs: number;
  hangoverMs: number;
  /** Minimum speech while bot audio may echo. */
  botMinSpeechMs: number;
}

export class EchoGate {
  private readonly start = new Float64Array(SLOTS);
  private readonly end = new Float64Array(SLOTS);
  private readonly level = new Float32Array(SLOTS);
  private head = 0;
  private count = 0;
  private botThr: number;
  /** The threshold (above floor) used for the last inbound frame while bot audio may echo. */
  lastBotThresholdDb = 0;
  /** Bot audio played within the window at the last inbound frame. */
  lastEchoPossible = false;

  constructor(
    private readonly opts: EchoGateOptions,
    private readonly dsp: CallDsp,
  ) {
    this.botThr = opts.thresholdDb;
    this.apply(opts.thresholdDb);
  }

  /**
   * Records the frame the last dsp.nextFrame() built (`bytes` of mu-law, at the level the DSP
   * measured) as playing from `startMs`; `t` is now.
   */
  sent(bytes: number, startMs: number, t: number): void {
    const db = bytes > 0 ? this.dsp.lastFrameEnergyDb() : SILENT_DB;
    const endMs = startMs + bytes / 8;
    // Intervals whose echo can no longer arrive are forgotten.
    const expired = t - this.opts.windowMs;
    while (this.count > 0 && this.end[this.head] <= expired) {
      this.head = (this.head + 1) % SLOTS;
      this.count--;
    }
    if (this.count === SLOTS) {
      const last = (this.head + SLOTS - 1) % SLOTS;
      this.end[last] = endMs;
      if (db > this.level[last]) this.level[last] = db;
      return;
    }
    const i = (this.head + this.count) % SLOTS;
    this.start[i] = startMs;
    this.end[i] = endMs;
    this.level[i] = db;
    this.count++;
  }

  /** Twilio dropped what had not played by `t` (clear): that audio never echoes. */
  cleared(t: number): void {
    while (this.count > 0) {
      const last = (this.head + this.count - 1) % SLOTS;
      if (this.start[last] >= t) this.count--;
      else {
        if (this.end[last] > t) this.end[last] = t;
        break;
      }
    }
  }

  /** Loudest bot audio that played (some of its time) within [t - windowMs, t), or -Infinity. */
  refMaxDb(t: number): number {
    const from = t - this.opts.windowMs;
    let m = -Infinity;
    // Newest first; intervals are in play order, so the scan stops at the window's start.
    for (let k = this.count - 1; k >= 0; k--) {
      const i = (this.head + k) % SLOTS;
      if (this.end[i] <= from) break;
      if (this.start[i] < t && this.level[i] > m) m = this.level[i];
    }
    return m;
  }

  /**
   * Before an inbound frame arriving at `t`: sets the VAD's bot-mode threshold for it and returns
   * the botPlaying flag to pass with the frame.
   */
  beforeInbound(t: number): boolean {
    const ref = this.refMaxDb(t);
    const o = this.opts;
    if (ref === -Infinity) {
      this.lastEchoPossible = false;
      this.lastBotThresholdDb = o.thresholdDb;
      // The VAD keeps bot mode a little after the flag drops; make that mode the normal one.
      if (this.botThr !== o.thresholdDb) this.apply(o.thresholdDb);
      return false;
    }
    const floor = this.dsp.vadFloorDb();
    const thr = Math.max(o.thresholdDb, ref - o.marginDb - floor);
    this.lastEchoPossible = thr > o.thresholdDb;
    this.lastBotThresholdDb = thr;
    // Half a dB is below the VAD's resolution in practice; skip the call when nothing changes.
    if (Math.abs(thr - this.botThr) >= 0.5 || this.lastEchoPossible !== this.botThr > o.thresholdDb) this.apply(thr);
    return true;
  }

  private apply(botThr: number): void {
    this.botThr = botThr;
    const o = this.opts;
    // With no echo possible, bot mode is the normal mode: same threshold, same confirmation.
    const botMin = botThr > o.thresholdDb ? o.botMinSpeechMs : o.minSpeechMs;
    this.dsp.setVadParams(o.thresholdDb, o.minSpeechMs, o.hangoverMs, botThr, botMin);
  }
}
