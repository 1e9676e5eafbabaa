// Streaming polyphase FIR resamplers between 8, 16 and 24 kHz, PCM16 in and out.
//
// Model: the input is (conceptually) upsampled by L with zeros, low-pass filtered at L*fin by a
// linear-phase FIR h of N taps, and every M-th sample kept. Output m sits at position m*M of the
// L*fin grid; with m*M = q*L + r it needs input samples up to q and the taps of phase r:
//   y[m] = sum_i h[r + i*L] * L * x[q - i]
// Phase tables come from scripts/design-filters.mjs (assembly/filters.ts) as int16 taps
// q ~= h * G, reversed (newest sample last) and padded to P taps, P a multiple of 8; the output
// is round(sum * SCALE), SCALE = L / G.
//
// Arithmetic: i32x4.dot_i16x8_s multiplies eight int16 samples by eight int16 taps and adds them
// pairwise into four i32 lanes, exactly (twice the multiply-adds per instruction of f32x4, and
// half the loads). The table script proves, for every table and the accumulator layout below,
// that no accumulator lane can overflow for any int16 input. The lanes are then converted to
// f32 and added by a transpose-add, four outputs at a time, scaled, rounded to nearest (ties to
// even) and saturated to int16 (the exact total may exceed i32: a full-scale square wave's
// Gibbs overshoot does). The f32 steps cost ~1e-2 LSB at most, far below the int16 output
// quantisation where the SINAD budget goes; the tap quantisation is what limits the stopband
// (-93 dB instead of the float design's -98 dB for 8k<->24k, see filters.ts).
//
// Kernels (one specialised copy per rate pair: L, M and P are constants in each):
// - Interpolators (M == 1): a group is 4L consecutive outputs, i.e. all L phases of four
//   consecutive windows. Each output is one short dot product (P <= 80 taps, unrolled), and four
//   consecutive outputs are reduced together, so they come out in order without shuffles.
// - The others (M > 1, long phases): outputs m and m + L share phase r and their windows are M
//   samples apart, so outputs are computed four of a kind (same phase, windows M apart): each
//   8-tap block of coefficients is loaded once for four products, in a loop. A group is L such
//   quads, interleaved into 4L consecutive outputs. The first and second half of a phase's blocks
//   go to separate accumulators (each half fits i32 where the whole might not).
//
// Exactness of streaming: every output is computed by the same sequence of operations on the
// same input samples and taps (the same accumulators, blocks in order, the same reduction tree
// in every lane), whatever the framing and wherever it falls in a group; the position of the
// next output is kept as an integer (`ahead`, in L*fin units, relative to the next unread input
// sample), never as an accumulating float. So frame-by-frame output is bit-identical to one-shot.
// A group that runs past the end of the available input still computes all 4L lanes (reading a
// little stale history, see SLACK) and only the complete outputs are kept; the rest are
// recomputed, identically, by the next call.
//
// Filters (equiripple, linear phase, int16 taps; design and measured figures in
// scripts/design-filters.mjs and the head of filters.ts):
//   8k<->16k  N=71 at 16 kHz   pass 0-3.4k (0.024 dB)  stop 4.6k+ (-102 dB)  40 / 72 taps per output
//   8k<->24k  N=95 at 24 kHz   pass 0-3.4k (0.032 dB)  stop 4.6k+ (-93 dB)   32 / 96
//   16k<->24k N=215 at 48 kHz  pass 0-7k   (0.04 dB)   stop 8k+   (-88 dB)   72 / 112
// The wideband transition band, 7-8 kHz, ends at the 16 kHz side's Nyquist, so nothing above it
// images (16k -> 24k) or aliases (24k -> 16k) back into the 16 kHz band.
//
// Delay (group delay, the same at all frequencies): (N - 1) / 2 samples of the L*fin grid, i.e.
// (N - 1) / (2 L) input samples or (N - 1) / (2 M) output samples; resampler_delay_* expose it.
//   8k<->16k 2.1875 ms, 8k<->24k 1.9583 ms, 16k<->24k 2.2292 ms.
// Output 0 is aligned with input sample 0, so the first `delay` of output is the filter filling
// from a silent history.
import * as F from "./filters";
import { dsp_alloc, dsp_free } from "./mem";

// Input samples taken per pass. Larger n is processed in passes, which changes nothing in the
// output (see above) but keeps the per-instance state a fixed size.
const CHUNK: i32 = 1024;
// Samples past the newest input that an incomplete group may read: its last lane sits
// ((L-1)M + 3LM) / L samples after its first, i.e. at most 11 for these rates.
const SLACK: i32 = 16;

// State layout (bytes). The buffer holds P - 1 history samples, then up to CHUNK new ones.
const O_L = 0;
const O_M = 4;
const O_P = 8;
const O_AHEAD = 12; // next output position minus (inputs consumed * L), in L*fin units, >= 0
const O_COEF = 16;
const O_N = 20;
const O_IN_RATE = 24;
const O_OUT_RATE = 28;
const O_SCALE = 32; // f32
const O_KIND = 36; // which rate pair: selects the specialised kernel
const O_SCRATCH = 48; // 4L int16 outputs of an incomplete group
const O_BUF = 80;

@inline function bufBytes(P: i32): usize {
  return <usize>(P - 1 + CHUNK + SLACK) << 1;
}

/**
 * A resampler for inRate -> outRate (8000, 16000, 24000 in any combination), or 0 for an
 * unsupported pair. Allocates its fixed-size state once; free with resampler_free.
 */
export function resampler_new(inRate: i32, outRate: i32): usize {
  let L = 0, M = 0, P = 0, N = 0;
  let scale: f32 = 0;
  let kind = 0;
  let coef: usize = 0;
  if (inRate == 8000 && outRate == 16000) {
    L = F.R8_16_L; M = F.R8_16_M; P = F.R8_16_P; N = F.R8_16_N; coef = F.R8_16_COEF; scale = F.R8_16_SCALE;
  } else if (inRate == 16000 && outRate == 8000) {
    L = F.R16_8_L; M = F.R16_8_M; P = F.R16_8_P; N = F.R16_8_N; coef = F.R16_8_COEF; scale = F.R16_8_SCALE; kind = 1;
  } else if (inRate == 8000 && outRate == 24000) {
    L = F.R8_24_L; M = F.R8_24_M; P = F.R8_24_P; N = F.R8_24_N; coef = F.R8_24_COEF; scale = F.R8_24_SCALE; kind = 2;
  } else if (inRate == 24000 && outRate == 8000) {
    L = F.R24_8_L; M = F.R24_8_M; P = F.R24_8_P; N = F.R24_8_N; coef = F.R24_8_COEF; scale = F.R24_8_SCALE; kind = 3;
  } else if (inRate == 16000 && outRate == 24000) {
    L = F.R16_24_L; M = F.R16_24_M; P = F.R16_24_P; N = F.R16_24_N; coef = F.R16_24_COEF; scale = F.R16_24_SCALE; kind = 4;
  } else if (inRate == 24000 && outRate == 16000) {
    L = F.R24_16_L; M = F.R24_16_M; P = F.R24_16_P; N = F.R24_16_N; coef = F.R24_16_COEF; scale = F.R24_16_SCALE; kind = 5;
  } else {
    return 0;
  }
  const p = dsp_alloc(O_BUF + <i32>bufBytes(P));
  store<i32>(p, L, O_L);
  store<i32>(p, M, O_M);
  store<i32>(p, P, O_P);
  store<i32>(p, 0, O_AHEAD);
  store<usize>(p, coef, O_COEF);
  store<i32>(p, N, O_N);
  store<i32>(p, inRate, O_IN_RATE);
  store<i32>(p, outRate, O_OUT_RATE);
  store<f32>(p, scale, O_SCALE);
  store<i32>(p, kind, O_KIND);
  return p;
}

export function resampler_free(p: usize): void {
  dsp_free(p);
}

/** Back to the state of a new instance (silent history, phase 0). */
export function resampler_reset(p: usize): void {
  memory.fill(p + O_BUF, 0, bufBytes(load<i32>(p, O_P)));
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
  const kind = load<i32>(p, O_KIND);
  const coef = load<usize>(p, O_COEF);
  const scale = f32x4.splat(load<f32>(p, O_SCALE));
  const scratch = p + O_SCRATCH;
  const buf = p + O_BUF;
  const hist = <usize>(P - 1) << 1;
  const pBytes = <usize>P << 1;
  let ahead = load<i32>(p, O_AHEAD);
  let out = dst;
  let s = src;
  let left = n;
  while (left > 0) {
    const c = min(left, CHUNK);
    memory.copy(buf + hist, s, <usize>c << 1);
    const count = outCount(L, M, ahead, c);
    // Quad k of a group covers outputs m + k + L*t, t = 0..3, first one at position ahead + k*M;
    // a group advances 4*L*M units, a multiple of L, so phases stay and windows move 4M samples.
    const u1 = ahead + M, u2 = u1 + M;
    const q0 = ahead / L, q1 = u1 / L, q2 = u2 / L;
    const x0 = buf + (<usize>q0 << 1), x1 = buf + (<usize>q1 << 1), x2 = buf + (<usize>q2 << 1);
    const h0 = coef + <usize>(ahead - q0 * L) * pBytes;
    const h1 = coef + <usize>(u1 - q1 * L) * pBytes;
    const h2 = coef + <usize>(u2 - q2 * L) * pBytes;
    // One specialised copy of the group loop per rate pair: taps per phase, strides and the
    // number of phases become constants.
    switch (kind) {
      case 0: groups(F.R8_16_L, F.R8_16_M, F.R8_16_P, x0, x1, x2, h0, h1, h2, scale, out, count, scratch); break;
      case 1: groups(F.R16_8_L, F.R16_8_M, F.R16_8_P, x0, x1, x2, h0, h1, h2, scale, out, count, scratch); break;
      case 2: groups(F.R8_24_L, F.R8_24_M, F.R8_24_P, x0, x1, x2, h0, h1, h2, scale, out, count, scratch); break;
      case 3: groups(F.R24_8_L, F.R24_8_M, F.R24_8_P, x0, x1, x2, h0, h1, h2, scale, out, count, scratch); break;
      case 4: groups(F.R16_24_L, F.R16_24_M, F.R16_24_P, x0, x1, x2, h0, h1, h2, scale, out, count, scratch); break;
      default: groups(F.R24_16_L, F.R24_16_M, F.R24_16_P, x0, x1, x2, h0, h1, h2, scale, out, count, scratch); break;
    }
    out += <usize>count << 1;
    ahead = ahead + count * M - L * c;
    // Keep the last P - 1 samples as the next pass's history.
    memory.copy(buf, buf + (<usize>c << 1), hist);
    s += <usize>c << 1;
    left -= c;
  }
  store<i32>(p, ahead, O_AHEAD);
  return <i32>((out - dst) >> 1);
}

// `count` outputs to `out` in groups of 4L; see the header. L, M, P are compile-time constants.
@inline function groups(
  L: i32, M: i32, P: i32, x0: usize, x1: usize, x2: usize, h0: usize, h1: usize, h2: usize,
  scale: v128, out: usize, count: i32, scratch: usize,
): void {
  const stride = <usize>M << 1;
  const groupBytes = stride << 2;
  const groupOut = 4 * L;
  const nb = P >> 3;
  for (let m = 0; m < count; m += groupOut) {
    const whole = count - m >= groupOut;
    const o = whole ? out + (<usize>m << 1) : scratch;
    if (M == 1) {
      // ahead == 0 here, so h0 is phase 0: output k of the group is phase k % L of window k / L.
      const pb = <usize>P << 1;
      if (L == 2) {
        const v0 = reduce4(window(x0, h0, nb), window(x0, h0 + pb, nb), window(x0 + 2, h0, nb), window(x0 + 2, h0 + pb, nb), scale);
        const v1 = reduce4(window(x0 + 4, h0, nb), window(x0 + 4, h0 + pb, nb), window(x0 + 6, h0, nb), window(x0 + 6, h0 + pb, nb), scale);
        v128.store(o, i16x8.narrow_i32x4_s(v0, v1));
      } else {
        const v0 = reduce4(window(x0, h0, nb), window(x0, h0 + pb, nb), window(x0, h0 + 2 * pb, nb), window(x0 + 2, h0, nb), scale);
        const v1 = reduce4(window(x0 + 2, h0 + pb, nb), window(x0 + 2, h0 + 2 * pb, nb), window(x0 + 4, h0, nb), window(x0 + 4, h0 + pb, nb), scale);
        const v2 = reduce4(window(x0 + 4, h0 + 2 * pb, nb), window(x0 + 6, h0, nb), window(x0 + 6, h0 + pb, nb), window(x0 + 6, h0 + 2 * pb, nb), scale);
        v128.store(o, i16x8.narrow_i32x4_s(v0, v1));
        v128.store64_lane(o, i16x8.narrow_i32x4_s(v2, v2), 0, 16);
      }
    } else {
      const v0 = quad(x0, stride, h0, nb, scale);
      if (L == 1) {
        v128.store64_lane(o, i16x8.narrow_i32x4_s(v0, v0), 0);
      } else if (L == 2) {
        store2(o, v0, quad(x1, stride, h1, nb, scale));
      } else {
        store3(o, v0, quad(x1, stride, h1, nb, scale), quad(x2, stride, h2, nb, scale));
      }
    }
    if (!whole) memory.copy(out + (<usize>m << 1), scratch, <usize>(count - m) << 1);
    x0 += groupBytes;
    x1 += groupBytes;
    x2 += groupBytes;
  }
}

// Four outputs with the same taps h over windows x, x + stride, x + 2 stride, x + 3 stride (the
// M > 1 kernels): blocks in a loop, each coefficient block loaded once for the four windows. The
// first and the second half of the blocks go to separate accumulators, converted to f32 one by
// one (ACCUMULATION in the table script mirrors this).
@inline function quad(x: usize, stride: usize, h: usize, nb: i32, scale: v128): v128 {
  // stride is a constant: the four windows are immediate offsets from one pointer.
  const s1 = stride, s2 = stride << 1, s3 = stride * 3;
  const half = nb >> 1;
  let a0 = i32x4.splat(0);
  let a1 = a0, a2 = a0, a3 = a0;
  let xp = x, hp = h;
  const mid = h + (<usize>half << 4);
  // two blocks per iteration (the loop overhead is then small against eight dot products)
  for (; hp + 32 <= mid; hp += 32, xp += 32) {
    let c = v128.load(hp);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(xp), c));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(xp + s1), c));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load(xp + s2), c));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load(xp + s3), c));
    c = v128.load(hp, 16);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(xp, 16), c));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(xp + s1, 16), c));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load(xp + s2, 16), c));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load(xp + s3, 16), c));
  }
  if (hp < mid) {
    const c = v128.load(hp);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(xp), c));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(xp + s1), c));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load(xp + s2), c));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load(xp + s3), c));
    hp += 16;
    xp += 16;
  }
  const f0 = f32x4.convert_i32x4_s(a0), f1 = f32x4.convert_i32x4_s(a1);
  const f2 = f32x4.convert_i32x4_s(a2), f3 = f32x4.convert_i32x4_s(a3);
  a0 = i32x4.splat(0);
  a1 = a0; a2 = a0; a3 = a0;
  const end = h + (<usize>nb << 4);
  for (; hp + 32 <= end; hp += 32, xp += 32) {
    let c = v128.load(hp);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(xp), c));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(xp + s1), c));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load(xp + s2), c));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load(xp + s3), c));
    c = v128.load(hp, 16);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(xp, 16), c));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(xp + s1, 16), c));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load(xp + s2, 16), c));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load(xp + s3, 16), c));
  }
  if (hp < end) {
    const c = v128.load(hp);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(xp), c));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(xp + s1), c));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load(xp + s2), c));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load(xp + s3), c));
  }
  return reduce4(
    f32x4.add(f0, f32x4.convert_i32x4_s(a0)),
    f32x4.add(f1, f32x4.convert_i32x4_s(a1)),
    f32x4.add(f2, f32x4.convert_i32x4_s(a2)),
    f32x4.add(f3, f32x4.convert_i32x4_s(a3)),
    scale,
  );
}

// One output's dot product over nb 8-tap blocks (nb a constant: the ifs fold away), as f32
// lanes. Even and odd blocks go to two dependency chains, added in i32 (one accumulator per
// output: ACCUMULATION in the table script).
@inline function window(x: usize, h: usize, nb: i32): v128 {
  let e = i32x4.dot_i16x8_s(v128.load(x), v128.load(h));
  let o = i32x4.splat(0);
  if (nb > 1) o = i32x4.dot_i16x8_s(v128.load(x, 16), v128.load(h, 16));
  if (nb > 2) e = i32x4.add(e, i32x4.dot_i16x8_s(v128.load(x, 32), v128.load(h, 32)));
  if (nb > 3) o = i32x4.add(o, i32x4.dot_i16x8_s(v128.load(x, 48), v128.load(h, 48)));
  if (nb > 4) e = i32x4.add(e, i32x4.dot_i16x8_s(v128.load(x, 64), v128.load(h, 64)));
  if (nb > 5) o = i32x4.add(o, i32x4.dot_i16x8_s(v128.load(x, 80), v128.load(h, 80)));
  if (nb > 6) e = i32x4.add(e, i32x4.dot_i16x8_s(v128.load(x, 96), v128.load(h, 96)));
  if (nb > 7) o = i32x4.add(o, i32x4.dot_i16x8_s(v128.load(x, 112), v128.load(h, 112)));
  if (nb > 8) e = i32x4.add(e, i32x4.dot_i16x8_s(v128.load(x, 128), v128.load(h, 128)));
  if (nb > 9) o = i32x4.add(o, i32x4.dot_i16x8_s(v128.load(x, 144), v128.load(h, 144)));
  if (nb > 10) unreachable(); // add blocks above for longer phases
  const r = f32x4.convert_i32x4_s(i32x4.add(e, o));
  // V8 (TurboFan) keeps wasm loads in program order but schedules arithmetic as late as it can,
  // so straight-line code would issue all ~50 loads of a group first and spill most of them
  // (2.5x slower). A side effect per output pins its arithmetic before the next output's loads.
  // A global, not memory: a memory store would also make the optimiser reload every tap block.
  sink = r;
  return r;
}
let sink: v128 = i32x4.splat(0);

/** No meaning: it reads the scheduling barrier above, so the optimiser cannot remove it. */
export function resampler_sink(): i32 {
  return i32x4.extract_lane(sink, 0);
}

// Transpose-add of four f32 accumulators: lane k = (a_k[0] + a_k[2]) + (a_k[1] + a_k[3]), scaled,
// rounded to nearest and converted to i32 (the i16 narrowing then saturates).
@inline function reduce4(a0: v128, a1: v128, a2: v128, a3: v128, scale: v128): v128 {
  const s01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 1, 4, 5), v128.shuffle<f32>(a0, a1, 2, 3, 6, 7));
  const s23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 1, 4, 5), v128.shuffle<f32>(a2, a3, 2, 3, 6, 7));
  const sum = f32x4.add(v128.shuffle<f32>(s01, s23, 0, 2, 4, 6), v128.shuffle<f32>(s01, s23, 1, 3, 5, 7));
  // Adding 1.5 * 2^23 rounds to an integer (to nearest, ties to even) and leaves it in the low
  // mantissa bits, as long as |x| < 2^22: outputs here are within +-2.5 * 32768. Cheaper than
  // nearest + trunc_sat, which V8 expands to NaN and range fix-ups.
  const r = f32x4.add(f32x4.mul(sum, scale), f32x4.splat(12582912.0));
  return i32x4.sub(r, i32x4.splat(0x4b400000));
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
