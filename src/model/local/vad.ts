// Energy VAD for the local model's server_vad: 10 ms frames, speech when the frame RMS reaches a
// threshold for `onsetMs`, end of speech after `silenceMs` of quiet frames. Positions are absolute
// sample indices of the stream pushed so far.
import { rms } from './audio.js';

export interface VadConfig {
  rate: number;
  /** RMS (of 32768 full scale) a 10 ms frame must reach to count as speech. */
  rmsThreshold: number;
  silenceMs: number;
  onsetMs?: number;
}

export type VadEvent = { kind: 'start'; sample: number } | { kind: 'stop'; sample: number };

export class EnergyVad {
  speaking = false;
  /** Samples consumed into whole frames. */
  private pos = 0;
  private readonly frame: number;
  private readonly carry: Int16Array;
  private carryLen = 0;
  private loudRun = 0;
  private loudStart = 0;
  private quietRun = 0;
  private readonly onsetFrames: number;
  private readonly silenceFrames: number;

  constructor(private readonly cfg: VadConfig) {
    this.frame = Math.round(cfg.rate / 100);
    this.carry = new Int16Array(this.frame);
    this.onsetFrames = Math.max(1, Math.round((cfg.onsetMs ?? 20) / 10));
    this.silenceFrames = Math.max(1, Math.round(cfg.silenceMs / 10));
  }

  /** Start counting from `sample` (the stream position) with no speech in progress. */
  reset(sample: number): void {
    this.pos = sample;
    this.carryLen = 0;
    this.speaking = false;
    this.loudRun = 0;
    this.quietRun = 0;
  }

  push(pcm: Int16Array): VadEvent[] {
    const events: VadEvent[] = [];
    let i = 0;
    if (this.carryLen > 0) {
      const take = Math.min(this.frame - this.carryLen, pcm.length);
      this.carry.set(pcm.subarray(0, take), this.carryLen);
      this.carryLen += take;
      i = take;
      if (this.carryLen < this.frame) return events;
      this.step(rms(this.carry, 0, this.frame), events);
      this.carryLen = 0;
    }
    for (; i + this.frame <= pcm.length; i += this.frame) this.step(rms(pcm, i, i + this.frame), events);
    if (i < pcm.length) {
      this.carry.set(pcm.subarray(i), 0);
      this.carryLen = pcm.length - i;
    }
    return events;
  }

  private step(level: number, events: VadEvent[]): void {
    const start = this.pos;
    this.pos += this.frame;
    const loud = level >= this.cfg.rmsThreshold;
    if (!this.speaking) {
      if (!loud) {
        this.loudRun = 0;
        return;
      }
      if (this.loudRun === 0) this.loudStart = start;
      if (++this.loudRun >= this.onsetFrames) {
        this.speaking = true;
        this.quietRun = 0;
        events.push({ kind: 'start', sample: this.loudStart });
      }
      return;
    }
    if (loud) {
      this.quietRun = 0;
      return;
    }
    if (++this.quietRun >= this.silenceFrames) {
      this.speaking = false;
      this.loudRun = 0;
      events.push({ kind: 'stop', sample: this.pos });
    }
  }
}
