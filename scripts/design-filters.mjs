#!/usr/bin/env node
// Designs the polyphase FIR filters of the resamplers (assembly/resample.ts) and writes them as
// constant tables into assembly/filters.ts. Run: `node scripts/design-filters.mjs` (add `--check`
// to only print the design report). The output is deterministic, so re-running it reproduces the
// committed file byte for byte.
//
// Method: equiripple (Parks-McClellan / Remez exchange) linear-phase type-I low-pass, designed at
// the common rate L*fin (the "upsampled" rate where both the input and output grids live). The
// passband only needs 0.1 dB while the stopband needs 80 dB, and Remez lets us spend the taps where
// the spec is tight: for the same rejection a Kaiser window needs ~30% more taps (and delay).
// For each prototype the stopband weight is searched so the passband ripple lands at the target,
// which leaves all remaining freedom to the stopband.
//
// One prototype serves both directions of a pair (an interpolator's images and a decimator's
// aliases are both cut by the same stopband); only the layout and gain differ. Phase r holds
// h[r + i*L] * L for i = P-1 .. 0 (newest sample last, so a window of input is read forwards),
// zero-padded to P taps (P a multiple of 4, for f32x4); the L phases follow one another.
// Delay: (N - 1) / 2 samples of the L*fin rate, i.e. (N - 1) / (2 * L * fin) seconds.
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
// The prototypes. N is the longest odd length whose phases fill whole f32x4 blocks in the
// interpolating direction (ceil(N / L) <= P, P a multiple of 4): once P is paid for, extra taps
// are free and go to stopband rejection. P itself was picked by scanning
// (`node scripts/design-filters.mjs --scan`) for the smallest one reaching the targets below.
// Requirement: ripple <= 0.1 dB, images/aliases >= 80 dB down, delay <= 3 ms. The narrowband
// prototypes aim higher, at what speexdsp quality 5 measures in the same sweeps (<= 0.004 dB
// ripple up to 3.4 kHz, ~100 dB image/alias rejection; it has a narrower transition band but
// 5 ms of delay), so the faster path is not a lower-quality one. The 16k<->24k prototype (1 kHz
// transition at 48 kHz, the costly one) keeps 0.04 dB ripple and still reaches ~100 dB.
const PROTOTYPES = [
  // 8k <-> 16k at 16 kHz: pass 3.4k, stop 4.6k.
  { id: 'NB16', rate: 16000, passHz: 3400, stopHz: 4600, N: 71, rippleDb: 0.004, stopDb: -100 },
  // 8k <-> 24k at 24 kHz: pass 3.4k, stop 4.6k.
  { id: 'NB24', rate: 24000, passHz: 3400, stopHz: 4600, N: 107, rippleDb: 0.004, stopDb: -100 },
  // 16k <-> 24k at 48 kHz: pass 7k, stop 8k (the 16 kHz side's Nyquist: nothing above it may
  // image or alias back, so the transition band sits entirely below it).
  { id: 'WB48', rate: 48000, passHz: 7000, stopHz: 8000, N: 215, rippleDb: 0.04, stopDb: -100 },
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

function layout(h, L) {
  const N = h.length;
  const per = Math.ceil(N / L);
  const P = Math.ceil(per / 4) * 4;
  const phases = [];
  for (let r = 0; r < L; r++) {
    const c = new Float32Array(P);
    // Window x[q-P+1 .. q]; c[j] multiplies x[q-P+1+j], i.e. tap index i = P-1-j.
    for (let j = 0; j < P; j++) {
      const k = r + (P - 1 - j) * L;
      c[j] = k < N ? Math.fround(h[k] * L) : 0;
    }
    phases.push(c);
  }
  const table = new Float32Array(L * P);
  for (let r = 0; r < L; r++) table.set(phases[r], r * P);
  return { P, table, phases };
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
      const a = analyse(Float64Array.from(h, Math.fround), p.rate, p.passHz, p.stopHz);
      console.log(`${p.id} N=${N} ripple ${a.rippleDb.toFixed(4)} dB stop ${a.stopDb.toFixed(2)} dB ` +
        `delay ${(((N - 1) / 2 / p.rate) * 1000).toFixed(3)} ms`);
    }
  }
}

function main() {
  if (process.argv.includes('--scan')) return scan();
  const protos = {};
  const report = [];
  for (const p of PROTOTYPES) {
    const h = designForRipple(p.N, p.rate, p.passHz, p.stopHz, p.rippleDb);
    const h32 = Float64Array.from(h, (v) => Math.fround(v));
    const a = analyse(h32, p.rate, p.passHz, p.stopHz);
    const delayMs = ((p.N - 1) / 2 / p.rate) * 1000;
    report.push(
      `${p.id}: N=${p.N} rate=${p.rate} pass ${p.passHz} stop ${p.stopHz} ripple ${a.rippleDb.toFixed(4)} dB ` +
        `(${a.passMinDb.toFixed(4)}..${a.passMaxDb.toFixed(4)}) stop ${a.stopDb.toFixed(2)} dB delay ${delayMs.toFixed(4)} ms`,
    );
    if (a.stopDb > p.stopDb || a.rippleDb > 0.1 || delayMs > 3) throw new Error(`${p.id} misses the spec: ${report.at(-1)}`);
    protos[p.id] = { ...p, h, delayMs };
  }
  // The taps as emitted (h * L rounded to f32) must meet the same floor.
  for (const pair of PAIRS) {
    const p = protos[pair.proto];
    const eff = Float64Array.from(p.h, (v) => Math.fround(v * pair.L) / pair.L);
    const a = analyse(eff, p.rate, p.passHz, p.stopHz);
    if (a.stopDb > p.stopDb || a.rippleDb > 0.1) throw new Error(`${pair.id} taps miss the spec: ${JSON.stringify(a)}`);
  }

  const out = [];
  out.push('// GENERATED by scripts/design-filters.mjs: do not edit, re-run the script.');
  out.push('// Polyphase FIR tables for assembly/resample.ts (layouts explained in the script header).');
  out.push('//');
  for (const line of report) out.push(`// ${line}`);
  out.push('');
  for (const pair of PAIRS) {
    const proto = protos[pair.proto];
    const { P, table } = layout(proto.h, pair.L);
    // Delay in output samples: (N-1)/2 units of L*fin, one output sample is M units.
    const delayUnits = (proto.N - 1) / 2;
    out.push(`// ${pair.inRate} -> ${pair.outRate}: prototype ${pair.proto} (N=${proto.N}), L=${pair.L}, M=${pair.M}, ` +
      `${P} taps per phase, delay ${+(delayUnits / pair.L).toFixed(4)} input / ${+(delayUnits / pair.M).toFixed(4)} ` +
        `output samples = ${+proto.delayMs.toFixed(4)} ms`);
    out.push(`export const ${pair.id}_L: i32 = ${pair.L};`);
    out.push(`export const ${pair.id}_M: i32 = ${pair.M};`);
    out.push(`export const ${pair.id}_P: i32 = ${P};`);
    out.push(`export const ${pair.id}_N: i32 = ${proto.N};`);
    out.push(`export const ${pair.id}_COEF: usize = memory.data<f32>([`);
    for (let i = 0; i < table.length; i += 4) out.push('  ' + Array.from(table.slice(i, i + 4), fmt).join(', ') + ',');
    out.push('], 16);');
    out.push('');
  }
  const text = out.join('\n');
  console.log(report.join('\n'));
  if (!process.argv.includes('--check')) {
    const target = fileURLToPath(new URL('../assembly/filters.ts', import.meta.url));
    let prev = '';
    try {
      prev = readFileSync(target, 'utf8');
    } catch {}
    if (prev !== text) writeFileSync(target, text);
    console.log(prev === text ? 'assembly/filters.ts unchanged' : 'wrote assembly/filters.ts');
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
