// Where the caller talks, found from the caller's own WAV by frame energy. The simulator knows
// its input in advance, so this is an offline measurement helper (a few thousand frames per
// call), not a hot path and not the bridge's VAD.

export interface Utterance {
  /** Call time (ms since stream start) of the first speech frame. */
  startMs: number;
  /** Call time just after the last speech frame. */
  endMs: number;
}

export interface UtteranceOptions {
  /** A 20 ms frame is speech above this RMS level in dBFS (default -40). */
  thresholdDb?: number;
  /** Silence that ends an utterance (default 400 ms). */
  hangoverMs?: number;
  /** Shorter bursts are ignored as clicks (default 60 ms). */
  minSpeechMs?: number;
}

const FRAME = 160; // 20 ms at 8 kHz

/** Utterances in 8 kHz PCM16, at 20 ms resolution. */
export function detectUtterances(pcm: Int16Array, opts: UtteranceOptions = {}): Utterance[] {
  const thresholdDb = opts.thresholdDb ?? -40;
  const hangFrames = Math.max(1, Math.round((opts.hangoverMs ?? 400) / 20));
  const minFrames = Math.max(1, Math.round((opts.minSpeechMs ?? 60) / 20));
  // Compare mean square against the threshold instead of taking a log per frame.
  const thresholdMs = (32768 * 10 ** (thresholdDb / 20)) ** 2;
  const frames = Math.ceil(pcm.length / FRAME);
  const out: Utterance[] = [];
  let start = -1;
  let lastSpeech = -1;
  let speechFrames = 0;
  const close = (): void => {
    if (start >= 0 && speechFrames >= minFrames) out.push({ startMs: start * 20, endMs: (lastSpeech + 1) * 20 });
    start = -1;
    speechFrames = 0;
  };
  for (let f = 0; f < frames; f++) {
    const a = f * FRAME;
    const b = Math.min(pcm.length, a + FRAME);
    let sum = 0;
    for (let i = a; i < b; i++) sum += pcm[i] * pcm[i];
    const speech = sum / FRAME > thresholdMs;
    if (speech) {
      if (start < 0) start = f;
      lastSpeech = f;
      speechFrames++;
    } else if (start >= 0 && f - lastSpeech >= hangFrames) {
      close();
    }
  }
  close();
  return out;
}
