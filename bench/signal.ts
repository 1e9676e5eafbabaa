// Deterministic test audio for the bench: speech-like (voiced harmonics with a moving pitch,
// a syllable-rate envelope with pauses, a little noise), so data-dependent kernels (G.711
// segments, VAD state changes) see a realistic mix rather than one repeated value.

/** xorshift32, so every run feeds the same samples. */
export function prng(seed = 0x9e3779b9): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** `seconds` of speech-like PCM16 at `rate` Hz, peaking near -6 dBFS. */
export function speechLike(rate: number, seconds: number, seed = 1): Int16Array {
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n);
  const rnd = prng(seed);
  let phase = 0;
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    // 4 Hz syllables, a pause every ~0.8 s (envelope stays 0 for a while)
    const syl = Math.max(0, Math.sin(2 * Math.PI * 4 * t));
    const pause = Math.sin(2 * Math.PI * 0.6 * t) > -0.3 ? 1 : 0;
    const env = syl * syl * pause;
    const f0 = 120 + 40 * Math.sin(2 * Math.PI * 1.3 * t);
    phase += (2 * Math.PI * f0) / rate;
    let v = 0;
    for (let h = 1; h <= 12; h++) {
      const f = h * f0;
      if (f >= rate / 2 || f > 3600) break;
      // formant-ish weighting: peaks near 500 Hz and 1500 Hz
      const w = 1 / (1 + ((f - 500) / 300) ** 2) + 0.5 / (1 + ((f - 1500) / 400) ** 2) + 0.05;
      v += w * Math.sin(h * phase);
    }
    const noise = (rnd() - 0.5) * 0.02;
    out[i] = Math.round(Math.max(-1, Math.min(1, 0.3 * env * v + noise)) * 32767);
  }
  return out;
}

/** Splits `samples` into consecutive frames of `frame` samples (views, no copy). */
export function frames(samples: Int16Array, frame: number): Int16Array[] {
  const out: Int16Array[] = [];
  for (let off = 0; off + frame <= samples.length; off += frame) out.push(samples.subarray(off, off + frame));
  return out;
}
