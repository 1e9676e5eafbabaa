// Typed handle over the DSP core's energy VAD (assembly/vad.ts): 8 kHz PCM16 in, per 10 ms block
// decisions, flags per call. One Vad per call; free() it when the call ends.
import { loadDsp, samplesAt, type DspExports } from './wasm.js';

export interface VadParams {
  /** Onset threshold above the noise floor, dB. */
  thresholdDb: number;
  /** Speech needed before an onset is declared, ms (rounded up to 10 ms blocks). */
  minSpeechMs: number;
  /** Quiet time after speech before an offset is declared, ms. */
  hangoverMs: number;
  /** Onset threshold above the floor while the bot plays (and 300 ms after), dB. */
  botThresholdDb: number;
  /** Speech needed before an onset while the bot plays, ms. */
  botMinSpeechMs: number;
}

/**
 * Defaults, measured on test/fixtures/speech (espeak-ng speech in sox noise, mu-law):
 * - thresholdDb 8 / minSpeechMs 20: onset no later than the 20 ms frame after the reference at
 *   30 and 20 dB SNR for white, pink and brown noise. 7.5..8 dB pass; 8.5 dB is a frame late on
 *   some 20 dB files; 7.5 dB false-triggers twice in 2 min of pink noise, 8 dB never did in
 *   6 min of white/pink/brown at -30..-70 dBFS.
 * - hangoverMs 300: rides over the gaps between words.
 * - botThresholdDb 32 / botMinSpeechMs 150: rejects an echo 10 dB below a -20 dBFS bot over a
 *   -55 dBFS line (30..34 dB work there) and hears a caller at -22 dBFS ~200 ms after the
 *   onset. Relative to the floor, so the right value depends on the line's noise: to be tuned
 *   end to end.
 */
export const VAD_DEFAULTS: Readonly<VadParams> = Object.freeze({
  thresholdDb: 8,
  minSpeechMs: 20,
  hangoverMs: 300,
  botThresholdDb: 32,
  botMinSpeechMs: 150,
});

/** Flag bits returned by processFrame / process. */
export const VAD_SPEECH = 1;
export const VAD_ONSET = 2;
export const VAD_OFFSET = 4;

/** Samples per 10 ms decision block and per 20 ms Twilio frame at 8 kHz. */
export const VAD_BLOCK = 80;
export const VAD_FRAME = 160;

interface VadExports extends DspExports {
  vad_new(): number;
  vad_free(p: number): void;
  vad_reset(p: number): void;
  vad_set_params(p: number, thr: number, minMs: number, hangMs: number, botThr: number, botMinMs: number): void;
  vad_process(p: number, pcm: number, n: number, botPlaying: number): number;
  vad_energy_db(p: number): number;
  vad_floor_db(p: number): number;
  vad_blocks(p: number): number;
  vad_onset_block(p: number): number;
  vad_offset_block(p: number): number;
}

export class Vad {
  private readonly dsp: VadExports;
  private handle: number;
  private current: VadParams;
  private scratch = 0;
  private scratchLen = 0;

  constructor(params: Partial<VadParams> = {}) {
    this.dsp = loadDsp() as VadExports;
    this.handle = this.dsp.vad_new();
    this.current = { ...VAD_DEFAULTS };
    this.setParams(params);
  }

  /** The state pointer, for callers that drive the raw exports themselves. */
  get ptr(): number {
    return this.handle;
  }

  get params(): Readonly<VadParams> {
    return this.current;
  }

  setParams(params: Partial<VadParams>): void {
    const p = { ...this.current, ...params };
    this.current = p;
    this.dsp.vad_set_params(this.handle, p.thresholdDb, p.minSpeechMs, p.hangoverMs, p.botThresholdDb, p.botMinSpeechMs);
  }

  /**
   * Runs `samples` PCM16 samples already in WASM memory at `pcmPtr` (2-byte aligned; a Twilio
   * frame is 160). Returns VAD_* flags. No copy, no allocation.
   */
  processFrame(pcmPtr: number, samples: number = VAD_FRAME, botPlaying = false): number {
    return this.dsp.vad_process(this.handle, pcmPtr, samples, botPlaying ? 1 : 0);
  }

  /**
   * Copies `pcm` into a scratch buffer owned by this Vad and processes it (tests, tools). The
   * scratch grows on demand, which may grow WASM memory: not for the per-frame hot path.
   */
  process(pcm: Int16Array, botPlaying = false): number {
    if (pcm.length > this.scratchLen) {
      if (this.scratch) this.dsp.dsp_free(this.scratch);
      this.scratchLen = Math.max(pcm.length, VAD_FRAME);
      this.scratch = this.dsp.dsp_alloc(this.scratchLen * 2);
    }
    samplesAt(this.scratch, pcm.length).set(pcm);
    return this.processFrame(this.scratch, pcm.length, botPlaying);
  }

  /** Energy of the last 20 ms, dBFS (>= -100). */
  get energyDb(): number {
    return this.dsp.vad_energy_db(this.handle);
  }

  /** Noise floor estimate, dBFS. */
  get floorDb(): number {
    return this.dsp.vad_floor_db(this.handle);
  }

  /** 10 ms blocks processed since creation or reset(). */
  get blocks(): number {
    return this.dsp.vad_blocks(this.handle);
  }

  /** Block index at which the last onset was declared, -1 if none. */
  get onsetBlock(): number {
    return this.dsp.vad_onset_block(this.handle);
  }

  /** Block index at which the last offset was declared, -1 if none. */
  get offsetBlock(): number {
    return this.dsp.vad_offset_block(this.handle);
  }

  /** Starts over (new call on a reused handle); parameters are kept. */
  reset(): void {
    this.dsp.vad_reset(this.handle);
  }

  free(): void {
    if (this.scratch) this.dsp.dsp_free(this.scratch);
    this.scratch = 0;
    this.scratchLen = 0;
    if (this.handle) this.dsp.vad_free(this.handle);
    this.handle = 0;
  }
}
