// Twilio's outbound playback, modelled on the call timeline (8 kHz samples since the stream
// started). Pure: the caller passes the current position, so it is testable without clocks.
//
// - `media` bytes are appended to a buffer that plays in real time; if the buffer had run dry,
//   playback of the new bytes starts at the moment they arrive.
// - a `mark` is queued at the buffer's end and is due when playback reaches it; with nothing
//   buffered it is due at once.
// - `clear` drops everything not yet played and makes every pending mark due at once.
// `heard` holds what actually played (mu-law codes, 0xFF = silence elsewhere).

export const SAMPLES_PER_MS = 8;
const MULAW_SILENCE = 0xff;

/** A stretch of uninterrupted playback, in samples on the call timeline. */
export interface PlaybackRun {
  start: number;
  end: number;
  /** True if a `clear` cut this run short (playback was still going when it arrived). */
  endedByClear: boolean;
}

export class PlaybackModel {
  /** What played, one mu-law code per sample of the call; audio past the end is not kept. */
  readonly heard: Uint8Array;
  readonly runs: PlaybackRun[] = [];
  private end = 0; // sample where buffered audio runs out
  private readonly pending: { name: string; at: number }[] = [];

  constructor(capacitySamples: number) {
    this.heard = new Uint8Array(capacitySamples).fill(MULAW_SILENCE);
  }

  /** Samples buffered but not yet played at `now`. */
  buffered(now: number): number {
    return Math.max(0, this.end - now);
  }

  /** True while audio is playing at `now`. */
  playing(now: number): boolean {
    return this.end > now;
  }

  /** Sample position at which the next pending mark is due, or undefined. */
  nextMarkAt(): number | undefined {
    return this.pending[0]?.at;
  }

  /** Removes and returns, in order, the marks playback has reached by `now`. */
  takeDueMarks(now: number): string[] {
    const out: string[] = [];
    while (this.pending.length > 0 && this.pending[0].at <= now) out.push(this.pending.shift()!.name);
    return out;
  }

  /** Appends audio arriving at `now`; returns the sample where it starts playing. */
  append(now: number, codes: Uint8Array): number {
    const start = Math.max(this.end, now);
    const last = this.runs[this.runs.length - 1];
    if (last && !last.endedByClear && this.end >= now) {
      last.end = start + codes.length;
    } else {
      this.runs.push({ start, end: start + codes.length, endedByClear: false });
    }
    if (start < this.heard.length) {
      this.heard.set(codes.subarray(0, Math.min(codes.length, this.heard.length - start)), start);
    }
    this.end = start + codes.length;
    return start;
  }

  /** Queues a mark at the end of the buffer. Returns true if it is due at once (nothing buffered). */
  mark(now: number, name: string): boolean {
    if (this.end <= now && this.pending.length === 0) return true;
    this.pending.push({ name, at: Math.max(this.end, now) });
    return false;
  }

  /** Drops unplayed audio; returns the names of all pending marks (echoed at once by Twilio). */
  clear(now: number): string[] {
    if (this.end > now) {
      const last = this.runs[this.runs.length - 1];
      last.end = now;
      last.endedByClear = true;
      if (now < this.heard.length) this.heard.fill(MULAW_SILENCE, now, Math.min(this.end, this.heard.length));
      this.end = now;
    }
    return this.pending.splice(0).map((m) => m.name);
  }
}
