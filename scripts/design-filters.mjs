#!/usr/bin/env node
// Designs the polyphase FIR filters of the resamplers (assembly/resample.ts) and writes them as
// constant tables into assembly/filters.ts. Run: `node scripts/design-filters.mjs` (add `--check`
// to only print the design report, `--out FILE` to write elsewhere). The output is
// deterministic, so re-running it reproduces the committed file byte for byte.
//
// Method: equiripple (Parks-McClellan / Remez exchange) linear-phase type-I low-pass, designed at
// the common rate L*fin (the "upsampled" rate where both the input and output grids live). The
// passband only needs 0.1 dB while the stopband needs 80 dB, and Remez lets us spend the taps where
// the spec is tight: for the same rejection a Kaiser window needs ~30% more taps (and delay).
// For each prototype the stopband weight is searched so the passband ripple lands at the target,
// which leaves all remaining freedom to the stopband.
//
// Integer taps: the kernels multiply int16 samples by int16 taps with i32x4.dot_i16x8_s (eight
// products per instruction, exact i32 sums), so each prototype is quantised to integers
// q[k] ~= h[k] * G, G = (largest L among its pairs) * 2^15. Plain rounding would leave a
// quantisation-noise floor near -80 dB in the stopband (the error of ~100 taps of +-0.5 step adds
// up); instead the taps are fixed one at a time from the outside in, and after each one the
// still-free taps are re-optimised (least squares, Lawson-reweighted towards minimax on the
// stopband) to absorb its rounding error, where it hurts least: in the passband and transition
// band, which tolerate far more error (0.1 dB of ripple is 0.0115, a tap step is 3e-5). A final
// +-1 local search polishes the worst stopband peak. The result keeps most of the float design's
// rejection (see the report lines in assembly/filters.ts: float vs. int16 figures).
//
// One prototype serves both directions of a pair (an interpolator's images and a decimator's
// aliases are both cut by the same stopband); only the layout and the output scale differ. Phase r
// holds q[r + i*L] for i = P-1 .. 0 (newest sample last, so a window of input is read forwards),
// zero-padded to P taps (P a multiple of 8, for i16x8); the L phases follow one another. The
// kernel's output is round(sum * SCALE) with SCALE = L / G (2^-15 for the interpolators).
// Delay: (N - 1) / 2 samples of the L*fin rate, i.e. (N - 1) / (2 * L * fin) seconds.
//
// Overflow: the i32 accumulators hold partial sums of a fixed subset of taps each (see
// ACCUMULATION below, which mirrors the kernels); the script proves for every table that no
// subset can exceed i32 for any int16 input, sum |q| * 32768 < 2^31, and refuses to write it
// otherwise. The partial sums are added up in f32 (exact to ~1e-2 LSB), so the total may exceed
// i32 (a full-scale square wave's overshoot does) and is saturated to int16 at the end.
import { writeFileSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Remez exchange for a type-I (odd length, symmetric) low-pass filter.
// H(f) = sum_{k<n} a_k cos(2 pi k f), N = 2n - 1 taps; f in cycles per sample.

export function remezLowpass(N, fp, fs, stopWeight, { density = 20, maxIter = 80 } = {}) {
  if (N % 2 !== 1) throw new Error('type-I design needs odd N');
  const n = (N + 1) / 2; // cosine coefficients
  const r = n + 1; // extremal points
  // Dense grid over both bands, band edges included.
  const step = 0.5 / (density * n);
  const grid = []; // frequencies
  const band = []; // 0 pass, 1 stop
  const pushBand = (a, b, id) => {
    const cnt = Math.max(2, Math.ceil((b - a) / step) + 1);
    for (let i = 0; i < cnt; i++) {
      grid.push(a + ((b - a) * i) / (cnt - 1));
      band.push(id);
    }
  };
  pushBand(0, fp, 0);
  pushBand(fs, 0.5, 1);
  const G = grid.length;
  const D = band.map((b) => (b === 0 ? 1 : 0));
  const W = band.map((b) => (b === 0 ? 1 : stopWeight));
  const X = grid.map((f) => Math.cos(2 * Math.PI * f));

  // Initial extremal set: evenly spread over the grid.
  let ext = [];
  for (let i = 0; i < r; i++) ext.push(Math.round((i * (G - 1)) / (r - 1)));

  let delta = 0;
  let interp = null;
  const E = new Float64Array(G);
  for (let iter = 0; iter < maxIter; iter++) {
    const x = ext.map((j) => X[j]);
    // Barycentric weights in log form (products of ~100 distances overflow otherwise).
    const logw = new Float64Array(r);
    const sgn = new Float64Array(r);
    for (let i = 0; i < r; i++) {
      let s = 1;
      let l = 0;
      for (let j = 0; j < r; j++) {
        if (j === i) continue;
        const d = x[i] - x[j];
        if (d < 0) s = -s;
        l -= Math.log(Math.abs(d));
      }
      logw[i] = l;
      sgn[i] = s;
    }
    const maxl = Math.max(...logw);
    const gamma = Array.from({ length: r }, (_, i) => sgn[i] * Math.exp(logw[i] - maxl));
    let num = 0;
    let den = 0;
    for (let i = 0; i < r; i++) {
      const j = ext[i];
      num += gamma[i] * D[j];
      den += (gamma[i] * (i % 2 === 0 ? 1 : -1)) / W[j];
    }
    delta = num / den;
    // Interpolate through the first n extremals (the last one is implied).
    const xs = x.slice(0, n);
    const beta = xs.map((xi, i) => gamma[i] * (xi - x[r - 1]));
    const C = xs.map((_, i) => D[ext[i]] - ((i % 2 === 0 ? 1 : -1) * delta) / W[ext[i]]);
    interp = (xv) => {
      let nu = 0;
      let de = 0;
      for (let i = 0; i < n; i++) {
        const d = xv - xs[i];
        if (d === 0) return C[i];
        const t = beta[i] / d;
        nu += t * C[i];
        de += t;
      }
      return nu / de;
    };
    let emax = 0;
    for (let j = 0; j < G; j++) {
      E[j] = W[j] * (D[j] - interp(X[j]));
      emax = Math.max(emax, Math.abs(E[j]));
    }
    // Candidate extrema: local extrema of E within each band (band edges count).
    let cand = [];
    for (let j = 0; j < G; j++) {
      const prevSame = j > 0 && band[j - 1] === band[j];
      const nextSame = j < G - 1 && band[j + 1] === band[j];
      const e = E[j];
      const a = prevSame ? E[j - 1] : e > 0 ? -Infinity : Infinity;
      const b = nextSame ? E[j + 1] : e > 0 ? -Infinity : Infinity;
      if ((e > 0 && e >= a && e >= b) || (e < 0 && e <= a && e <= b)) cand.push(j);
    }
    const alternate = (list) => {
      const out = [];
      for (const j of list) {
        if (out.length && Math.sign(E[out[out.length - 1]]) === Math.sign(E[j])) {
          if (Math.abs(E[j]) > Math.abs(E[out[out.length - 1]])) out[out.length - 1] = j;
        } else out.push(j);
      }
      return out;
    };
    cand = alternate(cand);
    while (cand.length > r) {
      if (cand.length === r + 1) {
        if (Math.abs(E[cand[0]]) < Math.abs(E[cand[cand.length - 1]])) cand.shift();
        else cand.pop();
      } else {
        let k = 0;
        for (let i = 1; i < cand.length; i++) if (Math.abs(E[cand[i]]) < Math.abs(E[cand[k]])) k = i;
        cand.splice(k, 1);
        cand = alternate(cand);
      }
    }
    if (cand.length < r) throw new Error(`remez: lost extremals (${cand.length} < ${r}) at N=${N}`);
    const same = cand.every((j, i) => j === ext[i]);
    ext = cand;
    if (same || (emax - Math.abs(delta)) / Math.abs(delta) < 1e-9) break;
  }
  // Frequency sampling of the converged cosine polynomial -> impulse response.
  const A = new Float64Array(n);
  for (let m = 0; m < n; m++) A[m] = interp(Math.cos((2 * Math.PI * m) / N));
  const h = new Float64Array(N);
  for (let k = 0; k < N; k++) {
    const t = k - (n - 1);
    let s = A[0];
    for (let m = 1; m < n; m++) s += 2 * A[m] * Math.cos((2 * Math.PI * m * t) / N);
    h[k] = s / N;
  }
  return { h, delta: Math.abs(delta) };
}

// ---------------------------------------------------------------------------------------------
// Response analysis of the taps as the kernel will use them (f32-rounded).

function response(h, f) {
  let re = 0;
  let im = 0;
  for (let k = 0; k < h.length; k++) {
    re += h[k] * Math.cos(2 * Math.PI * f * k);
    im -= h[k] * Math.sin(2 * Math.PI * f * k);
  }
  return Math.hypot(re, im);
}

export function analyse(h, rate, passHz, stopHz) {
  let gmin = Infinity;
  let gmax = -Infinity;
  for (let i = 0; i <= 2000; i++) {
    const g = response(h, (passHz * i) / 2000 / rate);
    gmin = Math.min(gmin, g);
    gmax = Math.max(gmax, g);
  }
  let smax = 0;
  const nyq = rate / 2;
  for (let i = 0; i <= 8000; i++) smax = Math.max(smax, response(h, (stopHz + ((nyq - stopHz) * i) / 8000) / rate));
  return {
    rippleDb: 20 * Math.log10(gmax / gmin),
    passMinDb: 20 * Math.log10(gmin),
    passMaxDb: 20 * Math.log10(gmax),
    stopDb: 20 * Math.log10(smax),
  };
}

// Largest-attenuation design for a given length whose passband ripple is at most `rippleDb`
// peak to peak: bisect the stopband weight on a log scale.
export function designForRipple(N, rate, passHz, stopHz, rippleDb) {
  const dp = (10 ** (rippleDb / 20) - 1) / (10 ** (rippleDb / 20) + 1);
  let lo = Math.log(1);
  let hi = Math.log(1e4);
  let best = null;
  for (let it = 0; it < 40; it++) {
    const mid = (lo + hi) / 2;
    const d = remezLowpass(N, passHz / rate, stopHz / rate, Math.exp(mid));
    if (d.delta <= dp) {
      best = d;
      lo = mid;
    } else hi = mid;
  }
  if (!best) throw new Error(`no design for N=${N}`);
  return best.h;
}

// ---------------------------------------------------------------------------------------------
// Quantisation to int16 taps.

function solveInPlace(A, b) {
  const n = b.length;
  for (let i = 0; i < n; i++) {
    let p = i;
    for (let r = i + 1; r < n; r++) if (Math.abs(A[r][i]) > Math.abs(A[p][i])) p = r;
    [A[i], A[p]] = [A[p], A[i]];
    [b[i], b[p]] = [b[p], b[i]];
    for (let r = i + 1; r < n; r++) {
      const f = A[r][i] / A[i][i];
      if (f === 0) continue;
      for (let k = i; k < n; k++) A[r][k] -= f * A[i][k];
      b[r] -= f * b[i];
    }
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= A[i][k] * x[k];
    x[i] = s / A[i][i];
  }
  return x;
}

/**
 * Integer taps q ~= h * G (symmetric, so still linear phase) with a low stopband peak; see the
 * header. Works on the cosine form A(f) = q[c] + 2 sum_k q[c+k] cos(2 pi f k), c = (N-1)/2.
 */
export function quantise(h, G, rate, passHz, stopHz, { passWeight, rippleMaxDb, lawson = 6 }) {
  const N = h.length;
  const c = (N - 1) / 2;
  const n = c + 1;
  const Kp = 300;
  const Ks = 1500;
  const freq = [];
  const target = [];
  const stop = [];
  for (let i = 0; i <= Kp; i++) { freq.push((passHz * i) / Kp / rate); target.push(G); stop.push(false); }
  for (let i = 0; i <= Ks; i++) { freq.push((stopHz + ((rate / 2 - stopHz) * i) / Ks) / rate); target.push(0); stop.push(true); }
  const M = freq.length;
  const basis = [];
  for (let k = 0; k < n; k++) basis.push(Float64Array.from(freq, (f) => (k === 0 ? 1 : 2 * Math.cos(2 * Math.PI * f * k))));
  const respOf = (v) => {
    const A = new Float64Array(M);
    for (let k = 0; k < n; k++) {
      const b = basis[k];
      const vk = v[k];
      if (vk !== 0) for (let i = 0; i < M; i++) A[i] += vk * b[i];
    }
    return A;
  };
  const stopPeak = (A) => {
    let m = 0;
    for (let i = 0; i < M; i++) if (stop[i]) m = Math.max(m, Math.abs(A[i]));
    return m;
  };
  const fixed = new Array(n).fill(false);

  // Re-optimises the free entries of v in place; returns the stopband peak reached.
  function reoptimise(v) {
    const free = [];
    for (let k = 0; k < n; k++) if (!fixed[k]) free.push(k);
    if (free.length === 0) return stopPeak(respOf(v));
    const w = Float64Array.from(stop, (s) => (s ? 1 : passWeight));
    const rest = Float64Array.from(target);
    for (let k = 0; k < n; k++) {
      if (!fixed[k]) continue;
      const b = basis[k];
      for (let i = 0; i < M; i++) rest[i] -= v[k] * b[i];
    }
    let best = Infinity;
    let bestV = null;
    for (let it = 0; it < lawson; it++) {
      const m = free.length;
      const AtA = Array.from({ length: m }, () => new Float64Array(m));
      const Atb = new Float64Array(m);
      for (let a = 0; a < m; a++) {
        const ba = basis[free[a]];
        const wa = new Float64Array(M);
        for (let i = 0; i < M; i++) wa[i] = w[i] * ba[i];
        for (let bb = a; bb < m; bb++) {
          const bv = basis[free[bb]];
          let s = 0;
          for (let i = 0; i < M; i++) s += wa[i] * bv[i];
          AtA[a][bb] = s;
          AtA[bb][a] = s;
        }
        let s = 0;
        for (let i = 0; i < M; i++) s += wa[i] * rest[i];
        Atb[a] = s;
      }
      const sol = solveInPlace(AtA, Atb);
      free.forEach((k, a) => { v[k] = sol[a]; });
      const A = respOf(v);
      const peak = stopPeak(A);
      if (peak < best) { best = peak; bestV = Float64Array.from(v); }
      // Lawson: weigh each stopband point by its error, pulling the solution towards minimax.
      let total = 0;
      for (let i = 0; i < M; i++) if (stop[i]) { w[i] *= Math.abs(A[i]) + 1e-9; total += w[i]; }
      for (let i = 0; i < M; i++) if (stop[i]) w[i] *= (Ks + 1) / total;
    }
    v.set(bestV);
    return best;
  }

  let v = Float64Array.from({ length: n }, (_, k) => h[c + k] * G);
  reoptimise(v);
  // Outermost taps first: the inner ones, fixed last, have the most freedom left to compensate.
  for (let k = n - 1; k >= 0; k--) {
    const lo = Math.floor(v[k]);
    let bestPeak = Infinity;
    let bestV = null;
    for (const cand of [lo, lo + 1]) {
      const t = Float64Array.from(v);
      t[k] = cand;
      fixed[k] = true;
      const peak = reoptimise(t);
      if (peak < bestPeak) { bestPeak = peak; bestV = t; }
    }
    v = bestV;
  }
  const half = Int32Array.from(v, Math.round);

  // Polish: +-1 on any tap pair while the stopband peak drops and the ripple stays in bounds.
  const rippleOk = (A) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < M; i++) if (!stop[i]) { lo = Math.min(lo, A[i]); hi = Math.max(hi, A[i]); }
    return 20 * Math.log10(hi / lo) <= rippleMaxDb;
  };
  let A = respOf(half);
  let peak = stopPeak(A);
  for (let iter = 0; iter < 400; iter++) {
    let best = null;
    for (let k = 0; k < n; k++) {
      for (const d of [-1, 1]) {
        const b = basis[k];
        let m = 0;
        for (let i = 0; i < M && m < peak; i++) if (stop[i]) m = Math.max(m, Math.abs(A[i] + d * b[i]));
        if (m < peak && (!best || m < best.m)) best = { k, d, m };
      }
    }
    if (!best) break;
    const T = Float64Array.from(A, (a, i) => a + best.d * basis[best.k][i]);
    if (!rippleOk(T)) break;
    half[best.k] += best.d;
    A = T;
    peak = best.m;
  }
  const q = new Int32Array(N);
  for (let k = 0; k < n; k++) { q[c + k] = half[k]; q[c - k] = half[k]; }
  return q;
}

// ---------------------------------------------------------------------------------------------
// The prototypes. Requirement: ripple <= 0.1 dB, images/aliases >= 80 dB down, delay <= 3 ms.
// The float designs aim at what speexdsp quality 5 measures (<= 0.004 dB ripple to 3.4 kHz,
// ~100 dB rejection); the int16 taps must keep `stopDb` (the quantisation floor, see above) and
// `rippleMaxDb`. `passWeight` trades passband error for stopband rejection in the quantiser.
// 8k <-> 24k is the bridge's hot path (every frame, both ways). N = 95 (32 taps per phase) was
// ~20% faster but its int16 passband deviated up to 0.015 dB per stage, which an 8k->24k->8k
// round trip of a 440 Hz tone shows as 58 dB SNR (test/convert.test.ts wants > 60); N = 107 with
// a heavier passband weight keeps the round trip transparent (<= 0.004 dB per stage, -91 dB
// stopband). The others keep the lengths of the earlier f32 kernels (and so their delays).
const PROTOTYPES = [
  // 8k <-> 16k at 16 kHz: pass 3.4k, stop 4.6k.
  { id: 'NB16', rate: 16000, passHz: 3400, stopHz: 4600, N: 71, rippleDb: 0.004, G: 2 * 32768,
    passWeight: 1e-3, stopDb: -95, rippleMaxDb: 0.03 },
  // 8k <-> 24k at 24 kHz: pass 3.4k, stop 4.6k.
  { id: 'NB24', rate: 24000, passHz: 3400, stopHz: 4600, N: 107, rippleDb: 0.004, G: 3 * 32512,
    passWeight: 1e-1, stopDb: -90, rippleMaxDb: 0.015 },
  // 16k <-> 24k at 48 kHz: pass 7k, stop 8k (the 16 kHz side's Nyquist: nothing above it may
  // image or alias back, so the transition band sits entirely below it).
  { id: 'WB48', rate: 48000, passHz: 7000, stopHz: 8000, N: 215, rippleDb: 0.04, G: 3 * 32768,
    passWeight: 1e-2, stopDb: -85, rippleMaxDb: 0.05 },
];

// Each direction: which prototype, L (interpolation) and M (decimation) factors.
const PAIRS = [
  { id: 'R8_16', inRate: 8000, outRate: 16000, proto: 'NB16', L: 2, M: 1 },
  { id: 'R16_8', inRate: 16000, outRate: 8000, proto: 'NB16', L: 1, M: 2 },
  { id: 'R8_24', inRate: 8000, outRate: 24000, proto: 'NB24', L: 3, M: 1 },
  { id: 'R24_8', inRate: 24000, outRate: 8000, proto: 'NB24', L: 1, M: 3 },
  { id: 'R16_24', inRate: 16000, outRate: 24000, proto: 'WB48', L: 3, M: 2 },
  { id: 'R24_16', inRate: 24000, outRate: 16000, proto: 'WB48', L: 2, M: 3 },
];

function layout(q, L) {
  const N = q.length;
  const per = Math.ceil(N / L);
  const P = Math.ceil(per / 8) * 8;
  const table = new Int16Array(L * P);
  for (let r = 0; r < L; r++) {
    // Window x[q-P+1 .. q]; c[j] multiplies x[q-P+1+j], i.e. tap index i = P-1-j.
    for (let j = 0; j < P; j++) {
      const k = r + (P - 1 - j) * L;
      table[r * P + j] = k < N ? q[k] : 0;
    }
  }
  return { P, table };
}

// ACCUMULATION: which i32 accumulator of its output each tap j of a phase (P taps, nb = P / 8
// blocks) lands in, as the kernels in assembly/resample.ts add them. i32x4.dot_i16x8_s puts taps
// 2l, 2l+1 of an 8-tap block into lane l. The interpolating kernels (M == 1) keep one
// accumulator per output; the others one for the first nb / 2 blocks and one for the rest.
function accumulatorOf(j, P, M) {
  const lane = (j >> 1) & 3;
  return M === 1 ? lane : lane + 4 * ((j >> 3) >= (P >> 4) ? 1 : 0);
}

function checkOverflow(pair, P, table) {
  for (let r = 0; r < pair.L; r++) {
    const sums = new Array(8).fill(0);
    for (let j = 0; j < P; j++) sums[accumulatorOf(j, P, pair.M)] += Math.abs(table[r * P + j]);
    const worst = Math.max(...sums) * 32768;
    if (worst > 2 ** 31 - 1) throw new Error(`${pair.id} phase ${r}: an accumulator can reach ${worst} > 2^31 - 1`);
  }
}

function fmt(x) {
  if (x === 0) return '0.0';
  // Shortest decimal that round-trips through f32.
  for (let d = 6; d <= 12; d++) {
    const s = x.toPrecision(d);
    if (Math.fround(Number(s)) === x) return s.includes('e') || s.includes('.') ? s : s + '.0';
  }
  return x.toPrecision(17);
}

function scan() {
  for (const p of PROTOTYPES) {
    for (let N = p.N - 16; N <= p.N + 8; N += 2) {
      const h = designForRipple(N, p.rate, p.passHz, p.stopHz, p.rippleDb);
      const a = analyse(h, p.rate, p.passHz, p.stopHz);
      const q = quantise(h, p.G, p.rate, p.passHz, p.stopHz, p);
      const b = analyse(Float64Array.from(q, (v) => v / p.G), p.rate, p.passHz, p.stopHz);
      console.log(`${p.id} N=${N} float: ripple ${a.rippleDb.toFixed(4)} dB stop ${a.stopDb.toFixed(2)} dB; ` +
        `int16: ripple ${b.rippleDb.toFixed(4)} dB stop ${b.stopDb.toFixed(2)} dB; delay ${(((N - 1) / 2 / p.rate) * 1000).toFixed(3)} ms`);
    }
  }
}

function main() {
  if (process.argv.includes('--scan')) return scan();
  const protos = {};
  const report = [];
  for (const p of PROTOTYPES) {
    const h = designForRipple(p.N, p.rate, p.passHz, p.stopHz, p.rippleDb);
    const a = analyse(h, p.rate, p.passHz, p.stopHz);
    const q = quantise(h, p.G, p.rate, p.passHz, p.stopHz, p);
    if (Math.max(...q.map(Math.abs)) > 32767) throw new Error(`${p.id}: a tap does not fit int16`);
    const b = analyse(Float64Array.from(q, (v) => v / p.G), p.rate, p.passHz, p.stopHz);
    const delayMs = ((p.N - 1) / 2 / p.rate) * 1000;
    report.push(
      `${p.id}: N=${p.N} rate=${p.rate} pass ${p.passHz} stop ${p.stopHz} delay ${delayMs.toFixed(4)} ms; float: ripple ` +
        `${a.rippleDb.toFixed(4)} dB stop ${a.stopDb.toFixed(2)} dB; int16 (G=${p.G}): ripple ${b.rippleDb.toFixed(4)} dB ` +
        `(${b.passMinDb.toFixed(4)}..${b.passMaxDb.toFixed(4)}) stop ${b.stopDb.toFixed(2)} dB`,
    );
    if (b.stopDb > p.stopDb || b.rippleDb > p.rippleMaxDb || delayMs > 3) throw new Error(`${p.id} misses the spec: ${report.at(-1)}`);
    protos[p.id] = { ...p, q, delayMs };
  }

  const out = [];
  out.push('// GENERATED by scripts/design-filters.mjs: do not edit, re-run the script.');
  out.push('// Polyphase FIR tables (int16 taps) for assembly/resample.ts (layouts explained in the script header).');
  out.push('//');
  for (const line of report) out.push(`// ${line}`);
  out.push('');
  for (const pair of PAIRS) {
    const proto = protos[pair.proto];
    const { P, table } = layout(proto.q, pair.L);
    checkOverflow(pair, P, table);
    const scale = Math.fround(pair.L / proto.G);
    // Delay in output samples: (N-1)/2 units of L*fin, one output sample is M units.
    const delayUnits = (proto.N - 1) / 2;
    out.push(`// ${pair.inRate} -> ${pair.outRate}: prototype ${pair.proto} (N=${proto.N}), L=${pair.L}, M=${pair.M}, ` +
      `${P} taps per phase, delay ${+(delayUnits / pair.L).toFixed(4)} input / ${+(delayUnits / pair.M).toFixed(4)} ` +
        `output samples = ${+proto.delayMs.toFixed(4)} ms`);
    out.push(`export const ${pair.id}_L: i32 = ${pair.L};`);
    out.push(`export const ${pair.id}_M: i32 = ${pair.M};`);
    out.push(`export const ${pair.id}_P: i32 = ${P};`);
    out.push(`export const ${pair.id}_N: i32 = ${proto.N};`);
    out.push(`export const ${pair.id}_SCALE: f32 = ${fmt(scale)}; // L / ${proto.G}`);
    out.push(`export const ${pair.id}_COEF: usize = memory.data<i16>([`);
    for (let i = 0; i < table.length; i += 8) out.push('  ' + Array.from(table.slice(i, i + 8), String).join(', ') + ',');
    out.push('], 16);');
    out.push('');
  }
  const text = out.join('\n');
  console.log(report.join('\n'));
  if (!process.argv.includes('--check')) {
    const o = process.argv.indexOf('--out');
    const target = o > 0 ? process.argv[o + 1] : fileURLToPath(new URL('../assembly/filters.ts', import.meta.url));
    let prev = '';
    try {
      prev = readFileSync(target, 'utf8');
    } catch {}
    if (prev !== text) writeFileSync(target, text);
    console.log(prev === text ? `${target} unchanged` : `wrote ${target}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
