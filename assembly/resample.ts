// Streaming polyphase FIR resamplers between 8, 16 and 24 kHz, PCM16 in and out.
//
// Model: the input is (conceptually) upsampled by L with zeros, low-pass filtered at L*fin by a
// linear-phase FIR h of N taps, and every M-th sample kept. Output m sits at position m*M of the
// L*fin grid; with m*M = q*L + r it needs input samples up to q and the taps of phase r:
//   y[m] = sum_i h[r + i*L] * L * x[q - i]
// Phase tables come from scripts/design-filters.mjs (assembly/filters.ts), already scaled by L,
// reversed (newest sample last) and padded to P taps, P a multiple of 4 for f32x4.
//
// Kernel: outputs m and m + L share phase r and their windows are M input samples apart, so
// outputs are computed four of a kind (same phase, windows M apart): each 4-tap block of
// coefficients is loaded once for four products, and the four accumulators are reduced together
// by a transpose-add. A group is L such quads, i.e. 4L consecutive outputs.
//
// Exactness of streaming: every output is computed by the same sequence of f32 operations on the
// same input samples and taps (one accumulator per output, blocks in order, the same reduction
// tree in every lane), whatever the framing and wherever it falls in a group; the position of the
// next output is kept as an integer (`ahead`, in L*fin units, relative to the next unread input
// sample), never as an accumulating float. So frame-by-frame output is bit-identical to one-shot.
// A group that runs past the end of the available input still computes all 4L lanes (reading a
// little stale history, see SLACK) and only the complete outputs are kept; the rest are
// recomputed, identically, by the next call.
//
// Precision: f32 accumulation of 16-bit samples times taps over <= 108 terms keeps the rounding
// error near 1e-2 LSB, far below the int16 output quantisation, where the SINAD budget goes.
// Output is rounded to nearest (ties to even) and saturated to int16.
//
// Filters (equiripple, linear phase; design and measured figures in scripts/design-filters.mjs):
//   8k<->16k  N=71 at 16 kHz   pass 0-3.4k (0.004 dB)  stop 4.6k+ (-107 dB)  36 / 72 taps per output
//   8k<->24k  N=107 at 24 kHz  pass 0-3.4k (0.004 dB)  stop 4.6k+ (-107 dB)  36 / 108
//   16k<->24k N=215 at 48 kHz  pass 0-7k   (0.04 dB)   stop 8k+   (-104 dB)  72 / 108
// The wideband transition band, 7-8 kHz, ends at the 16 kHz side's Nyquist, so nothing above it
// images (16k -> 24k) or aliases (24k -> 16k) back into the 16 kHz band.
//
// Delay (group delay, the same at all frequencies): (N - 1) / 2 samples of the L*fin grid, i.e.
// (N - 1) / (2 L) input samples or (N - 1) / (2 M) output samples; resampler_delay_* expose it.
//   8k<->16k 2.1875 ms, 8k<->24k 2.2083 ms, 16k<->24k 2.2292 ms.
// Output 0 is aligned with input sample 0, so the first `delay` of output is the filter filling
// from a silent history.
import * as F from "./filters";
import { dsp_alloc, dsp_free } from "./mem";

// Input samples converted per pass. Larger n is processed in passes, which changes nothing in
// the output (see above) but keeps the per-instance state a fixed size.
const CHUNK: i32 = 1024;
// Floats past the newest input that an incomplete group may read: its last lane sits
// ((L-1)M + 3LM) / L samples after its first, i.e. at most 11 for these rates.
const SLACK: i32 = 16;

// State layout (bytes). The buffer holds P - 1 history samples, then up to CHUNK new ones, as f32.
const O_L = 0;
const O_M = 4;
const O_P = 8;
const O_AHEAD = 12; // next output position minus (inputs consumed * L), in L*fin units, >= 0
const O_COEF = 16;
const O_N = 20;
const O_IN_RATE = 24;
const O_OUT_RATE = 28;
const O_SCRATCH = 32; // 4L int16 outputs of an incomplete group
const O_BUF = 64;

/**
 * A resampler for inRate -> outRate (8000, 16000, 24000 in any combination), or 0 for an
 * unsupported pair. Allocates its fixed-size state once; free with resampler_free.
 */
export function resampler_new(inRate: i32, outRate: i32): usize {
  let L = 0, M = 0, P = 0, N = 0;
  let coef: usize = 0;
  if (inRate == 8000 && outRate == 16000) {
    L = F.R8_16_L; M = F.R8_16_M; P = F.R8_16_P; N = F.R8_16_N; coef = F.R8_16_COEF;
  } else if (inRate == 16000 && outRate == 8000) {
    L = F.R16_8_L; M = F.R16_8_M; P = F.R16_8_P; N = F.R16_8_N; coef = F.R16_8_COEF;
  } else if (inRate == 8000 && outRate == 24000) {
    L = F.R8_24_L; M = F.R8_24_M; P = F.R8_24_P; N = F.R8_24_N; coef = F.R8_24_COEF;
  } else if (inRate == 24000 && outRate == 8000) {
    L = F.R24_8_L; M = F.R24_8_M; P = F.R24_8_P; N = F.R24_8_N; coef = F.R24_8_COEF;
  } else if (inRate == 16000 && outRate == 24000) {
    L = F.R16_24_L; M = F.R16_24_M; P = F.R16_24_P; N = F.R16_24_N; coef = F.R16_24_COEF;
  } else if (inRate == 24000 && outRate == 16000) {
    L = F.R24_16_L; M = F.R24_16_M; P = F.R24_16_P; N = F.R24_16_N; coef = F.R24_16_COEF;
  } else {
    return 0;
  }
  const p = dsp_alloc(O_BUF + (P - 1 + CHUNK + SLACK) * 4);
  store<i32>(p, L, O_L);
  store<i32>(p, M, O_M);
  store<i32>(p, P, O_P);
  store<i32>(p, 0, O_AHEAD);
  store<usize>(p, coef, O_COEF);
  store<i32>(p, N, O_N);
  store<i32>(p, inRate, O_IN_RATE);
  store<i32>(p, outRate, O_OUT_RATE);
  return p;
}

export function resampler_free(p: usize): void {
  dsp_free(p);
}

/** Back to the state of a new instance (silent history, phase 0). */
export function resampler_reset(p: usize): void {
  memory.fill(p + O_BUF, 0, <usize>(load<i32>(p, O_P) - 1 + CHUNK + SLACK) * 4);
  store<i32>(p, 0, O_AHEAD);
}

@inline function outCount(L: i32, M: i32, ahead: i32, n: i32): i32 {
  // Outputs whose position u = ahead + k*M satisfies u < L*n (their newest input is < n).
  const num = <i64>L * <i64>n - <i64>ahead;
  return num <= 0 ? 0 : <i32>((num + <i64>M - 1) / <i64>M);
}

/** Exact number of samples the next resampler_process(p, _, n, _) call writes. */
export function resampler_max_out(p: usize, n: i32): i32 {
  if (n <= 0) return 0;
  return outCount(load<i32>(p, O_L), load<i32>(p, O_M), load<i32>(p, O_AHEAD), n);
}

/** Group delay in input-rate samples. */
export function resampler_delay_in(p: usize): f64 {
  return <f64>(load<i32>(p, O_N) - 1) / (2.0 * <f64>load<i32>(p, O_L));
}

/** Group delay in output-rate samples. */
export function resampler_delay_out(p: usize): f64 {
  return <f64>(load<i32>(p, O_N) - 1) / (2.0 * <f64>load<i32>(p, O_M));
}

/** Group delay in milliseconds. */
export function resampler_delay_ms(p: usize): f64 {
  const units = <f64>(load<i32>(p, O_N) - 1) / 2.0;
  return (units * 1000.0) / (<f64>load<i32>(p, O_L) * <f64>load<i32>(p, O_IN_RATE));
}

/**
 * Resamples n int16 samples at src into dst and returns the number written (exactly
 * resampler_max_out(p, n), which the caller must have room for). Any n >= 0; never allocates.
 */
export function resampler_process(p: usize, src: usize, n: i32, dst: usize): i32 {
  const L = load<i32>(p, O_L);
  const M = load<i32>(p, O_M);
  const P = load<i32>(p, O_P);
  const coef = load<usize>(p, O_COEF);
  const scratch = p + O_SCRATCH;
  const buf = p + O_BUF;
  const hist = <usize>(P - 1) << 2;
  const pBytes = <usize>P << 2;
  const strideBytes = <usize>M << 2;
  const groupOut = 4 * L;
  let ahead = load<i32>(p, O_AHEAD);
  let out = dst;
  let s = src;
  let left = n;
  while (left > 0) {
    const c = min(left, CHUNK);
    toF32(s, buf + hist, c);
    const count = outCount(L, M, ahead, c);
    // Quad k of a group covers outputs m + k + L*t, t = 0..3, first one at position ahead + k*M;
    // a group advances 4*L*M units, a multiple of L, so phases stay and windows move 4M samples.
    const u1 = ahead + M, u2 = u1 + M;
    const q0 = ahead / L, q1 = u1 / L, q2 = u2 / L;
    let x0 = buf + (<usize>q0 << 2), x1 = buf + (<usize>q1 << 2), x2 = buf + (<usize>q2 << 2);
    const h0 = coef + <usize>(ahead - q0 * L) * pBytes;
    const h1 = coef + <usize>(u1 - q1 * L) * pBytes;
    const h2 = coef + <usize>(u2 - q2 * L) * pBytes;
    const groupBytes = strideBytes << 2;
    for (let m = 0; m < count; m += groupOut) {
      const whole = count - m >= groupOut;
      const o = whole ? out + (<usize>m << 1) : scratch;
      if (M == 1) {
        // Interpolators: ahead == 0, every quad reads the same four windows.
        if (L == 3) up3group(x0, h0, pBytes, o);
        else up2group(x0, h0, pBytes, o);
      } else {
        const v0 = quad(x0, strideBytes, h0, pBytes);
        if (L == 1) {
          v128.store64_lane(o, i16x8.narrow_i32x4_s(v0, v0), 0);
        } else {
          const v1 = quad(x1, strideBytes, h1, pBytes);
          if (L == 2) {
            store2(o, v0, v1);
          } else {
            store3(o, v0, v1, quad(x2, strideBytes, h2, pBytes));
          }
        }
      }
      if (!whole) memory.copy(out + (<usize>m << 1), scratch, <usize>(count - m) << 1);
      x0 += groupBytes;
      x1 += groupBytes;
      x2 += groupBytes;
    }
    out += <usize>count << 1;
    ahead = ahead + count * M - L * c;
    // Keep the last P - 1 samples as the next pass's history.
    memory.copy(buf, buf + (<usize>c << 2), hist);
    s += <usize>c << 1;
    left -= c;
  }
  store<i32>(p, ahead, O_AHEAD);
  return <i32>((out - dst) >> 1);
}

@inline function toF32(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const v = v128.load(src + (<usize>i << 1));
    const d = dst + (<usize>i << 2);
    v128.store(d, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v)));
    v128.store(d, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v)), 16);
  }
  for (; i < n; i++) {
    store<f32>(dst + (<usize>i << 2), <f32>load<i16>(src + (<usize>i << 1)));
  }
}

// Four outputs with the same taps h over windows x, x + stride, x + 2 stride, x + 3 stride.
@inline function quad(x: usize, stride: usize, h: usize, pBytes: usize): v128 {
  const x1 = x + stride;
  const x2 = x1 + stride;
  const x3 = x2 + stride;
  let a0 = f32x4.splat(0);
  let a1 = a0, a2 = a0, a3 = a0;
  for (let j: usize = 0; j < pBytes; j += 16) {
    const c = v128.load(h + j);
    a0 = f32x4.add(a0, f32x4.mul(v128.load(x + j), c));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(x1 + j), c));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(x2 + j), c));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(x3 + j), c));
  }
  return reduce4(a0, a1, a2, a3);
}

// Transpose-add of four accumulators: lane k = (a_k[0] + a_k[2]) + (a_k[1] + a_k[3]), rounded
// to nearest and converted to i32 (saturating; the i16 narrowing saturates again).
@inline function reduce4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const s01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 1, 4, 5), v128.shuffle<f32>(a0, a1, 2, 3, 6, 7));
  const s23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 1, 4, 5), v128.shuffle<f32>(a2, a3, 2, 3, 6, 7));
  const sum = f32x4.add(v128.shuffle<f32>(s01, s23, 0, 2, 4, 6), v128.shuffle<f32>(s01, s23, 1, 3, 5, 7));
  return i32x4.trunc_sat_f32x4_s(f32x4.nearest(sum));
}

// M == 1, L == 3: the three phases of four consecutive windows, sharing every input load.
@inline function up3group(x: usize, h0: usize, pBytes: usize, o: usize): void {
  const h1 = h0 + pBytes;
  const h2 = h1 + pBytes;
  let a00 = f32x4.splat(0);
  let a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  let a20 = a00, a21 = a00, a22 = a00, a23 = a00;
  for (let j: usize = 0; j < pBytes; j += 16) {
    const c0 = v128.load(h0 + j);
    const c1 = v128.load(h1 + j);
    const c2 = v128.load(h2 + j);
    let xv = v128.load(x + j);
    a00 = f32x4.add(a00, f32x4.mul(xv, c0));
    a10 = f32x4.add(a10, f32x4.mul(xv, c1));
    a20 = f32x4.add(a20, f32x4.mul(xv, c2));
    xv = v128.load(x + j, 4);
    a01 = f32x4.add(a01, f32x4.mul(xv, c0));
    a11 = f32x4.add(a11, f32x4.mul(xv, c1));
    a21 = f32x4.add(a21, f32x4.mul(xv, c2));
    xv = v128.load(x + j, 8);
    a02 = f32x4.add(a02, f32x4.mul(xv, c0));
    a12 = f32x4.add(a12, f32x4.mul(xv, c1));
    a22 = f32x4.add(a22, f32x4.mul(xv, c2));
    xv = v128.load(x + j, 12);
    a03 = f32x4.add(a03, f32x4.mul(xv, c0));
    a13 = f32x4.add(a13, f32x4.mul(xv, c1));
    a23 = f32x4.add(a23, f32x4.mul(xv, c2));
  }
  store3(o, reduce4(a00, a01, a02, a03), reduce4(a10, a11, a12, a13), reduce4(a20, a21, a22, a23));
}

// M == 1, L == 2: likewise with two phases.
@inline function up2group(x: usize, h0: usize, pBytes: usize, o: usize): void {
  const h1 = h0 + pBytes;
  let a00 = f32x4.splat(0);
  let a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  for (let j: usize = 0; j < pBytes; j += 16) {
    const c0 = v128.load(h0 + j);
    const c1 = v128.load(h1 + j);
    let xv = v128.load(x + j);
    a00 = f32x4.add(a00, f32x4.mul(xv, c0));
    a10 = f32x4.add(a10, f32x4.mul(xv, c1));
    xv = v128.load(x + j, 4);
    a01 = f32x4.add(a01, f32x4.mul(xv, c0));
    a11 = f32x4.add(a11, f32x4.mul(xv, c1));
    xv = v128.load(x + j, 8);
    a02 = f32x4.add(a02, f32x4.mul(xv, c0));
    a12 = f32x4.add(a12, f32x4.mul(xv, c1));
    xv = v128.load(x + j, 12);
    a03 = f32x4.add(a03, f32x4.mul(xv, c0));
    a13 = f32x4.add(a13, f32x4.mul(xv, c1));
  }
  store2(o, reduce4(a00, a01, a02, a03), reduce4(a10, a11, a12, a13));
}

// Interleave quads of two phases (v_k lane t = output k + 2t) into 8 consecutive outputs.
@inline function store2(o: usize, v0: v128, v1: v128): void {
  const a = i16x8.narrow_i32x4_s(v0, v1);
  v128.store(o, v128.shuffle<i16>(a, a, 0, 4, 1, 5, 2, 6, 3, 7));
}

// Interleave quads of three phases (v_k lane t = output k + 3t) into 12 consecutive outputs.
@inline function store3(o: usize, v0: v128, v1: v128, v2: v128): void {
  const a = i16x8.narrow_i32x4_s(v0, v1);
  const b = i16x8.narrow_i32x4_s(v2, v2);
  v128.store(o, v128.shuffle<i16>(a, b, 0, 4, 8, 1, 5, 9, 2, 6));
  v128.store64_lane(o, v128.shuffle<i16>(a, b, 10, 3, 7, 11, 0, 0, 0, 0), 0, 16);
}
