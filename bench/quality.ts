// Resampler quality, measured once per implementation (not timed) on tones pushed through it
// frame by frame, the way the bridge feeds it. On the steady-state part of the output (after
// 100 ms of filter fill) sinusoids are fitted by least squares at known frequencies.
//
// SINAD: one -1 dBFS tone in; SINAD = power of the fitted tone / power of everything else, i.e.
// images (upsampling) or aliases (downsampling) wherever they land, noise and distortion. Gain and
// delay do not count. Frequencies are not integer fractions of the rates (997 Hz, not 1000), or
// the int16 rounding error would repeat with the tone and stop behaving like noise. An ideal
// resampler with int16 input and output scores ~95 dB here (the two roundings), so SINAD only
// separates implementations that are worse than that.
// Image / alias rejection: the level of one specific unwanted component relative to the tone that
// causes it. A fit over ~0.9 s picks a component far below one LSB out of the rounding noise (the
// wanted tone dithers the rounding), so these resolve well past 95 dB (to ~120 dB).
//   up (8k -> 24k): a 3397 Hz tone; its images at 8000 - 3397 = 4603 Hz and 8000 + 3397 = 11397 Hz.
//   down (24k -> 8k): 997 + 4603 + 5000 Hz tones in; 4603 folds to 3397 Hz and 5000 to 3000 Hz,
//   both inside the telephone band.

export const TONE_AMPLITUDE = 29204; // -1 dBFS

export function tone(rate: number, freqs: number | number[], seconds: number, amplitude = TONE_AMPLITUDE): Int16Array {
  const fs = Array.isArray(freqs) ? freqs : [freqs];
  const a = amplitude / fs.length;
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (const f of fs) v += Math.sin((2 * Math.PI * f * i) / rate);
    out[i] = Math.round(a * v);
  }
  return out;
}

interface Fit {
  /** Power (mean square) of each fitted sinusoid. */
  powers: number[];
  /** Mean square of the residual. */
  residual: number;
}

/**
 * Joint least-squares fit of a DC term and a sinusoid (any amplitude and phase) at each of
 * `freqs` over y[from..to). Joint, because over a finite window sinusoids of different
 * frequencies are not orthogonal: fitting a weak component alone would pick up the strong tone's
 * leakage (~-70 dB for tones 1 kHz apart over 1 s), far above what we want to measure.
 */
export function fitTones(y: Int16Array, rate: number, freqs: number[], from: number, to: number): Fit {
  const K = 2 * freqs.length + 1;
  const ws = freqs.map((f) => (2 * Math.PI * f) / rate);
  const basis = (i: number, row: Float64Array): void => {
    for (let k = 0; k < ws.length; k++) {
      row[2 * k] = Math.cos(ws[k] * i);
      row[2 * k + 1] = Math.sin(ws[k] * i);
    }
    row[K - 1] = 1;
  };
  const A = Array.from({ length: K }, () => new Float64Array(K + 1));
  const row = new Float64Array(K);
  for (let i = from; i < to; i++) {
    basis(i, row);
    const v = y[i];
    for (let r = 0; r < K; r++) {
      for (let c = r; c < K; c++) A[r][c] += row[r] * row[c];
      A[r][K] += row[r] * v;
    }
  }
  for (let r = 0; r < K; r++) for (let c = 0; c < r; c++) A[r][c] = A[c][r];
  const x = solve(A);
  const n = to - from;
  const powers = new Array<number>(freqs.length).fill(0);
  let res = 0;
  for (let i = from; i < to; i++) {
    basis(i, row);
    let fit = x[K - 1];
    for (let k = 0; k < freqs.length; k++) {
      const c = x[2 * k] * row[2 * k] + x[2 * k + 1] * row[2 * k + 1];
      powers[k] += c * c;
      fit += c;
    }
    const e = y[i] - fit;
    res += e * e;
  }
  return { powers: powers.map((p) => p / n), residual: res / n };
}

/** Gauss-Jordan with partial pivoting on an augmented matrix (modified in place). */
function solve(M: Float64Array[]): Float64Array {
  const K = M.length;
  for (let c = 0; c < K; c++) {
    let p = c;
    for (let r = c + 1; r < K; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = 0; r < K; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      if (f !== 0) for (let k = c; k <= K; k++) M[r][k] -= f * M[c][k];
    }
  }
  return Float64Array.from(M, (r, i) => r[K] / r[i]);
}

const db = (x: number): number => 10 * Math.log10(x);

/** Steady-state window: skip the first 100 ms (filter fill) and the last 20 ms. */
function steady(len: number, rate: number): [number, number] {
  return [Math.round(rate * 0.1), len - Math.round(rate * 0.02)];
}

/** SINAD (dB) of `y`, the output at `outRate` for a single tone at `freq`. */
export function sinad(y: Int16Array, outRate: number, freq: number): number {
  const [from, to] = steady(y.length, outRate);
  const f = fitTones(y, outRate, [freq], from, to);
  return db(f.powers[0] / f.residual);
}

/** Powers (mean squares) of the components of `y` at `freqs`, fitted jointly. */
export function componentPowers(y: Int16Array, outRate: number, freqs: number[]): number[] {
  const [from, to] = steady(y.length, outRate);
  return fitTones(y, outRate, freqs, from, to).powers;
}

/** Rejection in dB of a component of power `unwanted` relative to a tone of power `wanted`. */
export function rejection(wanted: number, unwanted: number): number {
  return db(wanted / Math.max(unwanted, 1e-30));
}

/** Frequency a tone at `f` lands on after sampling at `rate`. */
export function folded(f: number, rate: number): number {
  return Math.abs(f - rate * Math.round(f / rate));
}
