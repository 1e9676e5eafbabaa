// Typed handle over the streaming polyphase resamplers of the DSP core (assembly/resample.ts).
// One Resampler per stream and direction; it keeps filter history and phase, so feeding a
// signal frame by frame gives exactly (bit for bit) what feeding it at once gives.
//
// Hot paths pass pointers into WASM memory (processPtr, or process() with Int16Array views over
// that memory): no copies, no allocation. process() with ordinary arrays and processCopy() copy
// through a shared scratch area: for tools and tests.
import { loadDsp, samplesAt, type DspExports } from './wasm.js';

interface ResampleExports extends DspExports {
  resampler_new(inRate: number, outRate: number): number;
  resampler_free(p: number): void;
  resampler_reset(p: number): void;
  resampler_process(p: number, src: number, n: number, dst: number): number;
  resampler_max_out(p: number, n: number): number;
  resampler_delay_in(p: number): number;
  resampler_delay_out(p: number): number;
  resampler_delay_ms(p: number): number;
}

export type SampleRate = 8000 | 16000 | 24000;

let dsp: ResampleExports | undefined;
function core(): ResampleExports {
  return (dsp ??= loadDsp() as ResampleExports);
}

// Scratch for the copying paths, grown on demand (growing WASM memory is fine off the hot path).
let scratch = 0;
let scratchBytes = 0;
function scratchFor(bytes: number): number {
  if (bytes > scratchBytes) {
    const d = core();
    if (scratch) d.dsp_free(scratch);
    scratchBytes = Math.max(bytes, 16384);
    scratch = d.dsp_alloc(scratchBytes);
  }
  return scratch;
}

export class Resampler {
  readonly inRate: SampleRate;
  readonly outRate: SampleRate;
  /** Group delay (the same at every frequency: the filters are linear phase), in milliseconds. */
  readonly delayMs: number;
  /** The same delay in input-rate samples (may be fractional, e.g. 17.667 for 8k -> 24k). */
  readonly delayIn: number;
  /** The same delay in output-rate samples. */
  readonly delayOut: number;
  private ptr: number;

  constructor(inRate: SampleRate, outRate: SampleRate) {
    const d = core();
    const p = d.resampler_new(inRate, outRate);
    if (!p) throw new RangeError(`unsupported resampling ${inRate} -> ${outRate}`);
    this.ptr = p;
    this.inRate = inRate;
    this.outRate = outRate;
    this.delayMs = d.resampler_delay_ms(p);
    this.delayIn = d.resampler_delay_in(p);
    this.delayOut = d.resampler_delay_out(p);
  }

  /** The state pointer, for WASM code that drives this resampler itself. */
  get handle(): number {
    return this.live();
  }

  /** Exactly how many samples the next process call with n input samples writes. */
  maxOut(n: number): number {
    return core().resampler_max_out(this.live(), n);
  }

  /** n int16 samples at WASM address src -> dst (room for maxOut(n)); returns samples written. */
  processPtr(src: number, n: number, dst: number): number {
    return core().resampler_process(this.live(), src, n, dst);
  }

  /**
   * Resamples `input` into `output` (which needs room for maxOut(input.length)) and returns the
   * number of samples written. Views over WASM memory are used in place; other arrays are
   * copied through a scratch area.
   */
  process(input: Int16Array, output: Int16Array): number {
    const d = core();
    const p = this.live();
    const n = input.length;
    const outN = d.resampler_max_out(p, n);
    if (output.length < outN) throw new RangeError(`output has room for ${output.length} samples, needs ${outN}`);
    const buf = d.memory.buffer;
    if (input.buffer === buf && output.buffer === buf) {
      return d.resampler_process(p, input.byteOffset, n, output.byteOffset);
    }
    // Growing the scratch may grow (and detach) WASM memory: take a copy of a view over it first.
    const src = input.buffer === buf ? input.slice() : input;
    const base = scratchFor(n * 2 + outN * 2 + 16);
    const dst = base + ((n * 2 + 15) & ~15);
    samplesAt(base, n).set(src);
    const w = d.resampler_process(p, base, n, dst);
    output.set(samplesAt(dst, w));
    return w;
  }

  /** Convenience for tools and tests: resamples `input` into a new array. */
  processCopy(input: Int16Array): Int16Array {
    const out = new Int16Array(this.maxOut(input.length));
    this.process(input, out);
    return out;
  }

  /** Forget the history and phase: the next sample is processed as by a new instance. */
  reset(): void {
    core().resampler_reset(this.live());
  }

  /** Releases the WASM state. Idempotent; the instance is unusable afterwards. */
  free(): void {
    if (this.ptr) {
      core().resampler_free(this.ptr);
      this.ptr = 0;
    }
  }

  private live(): number {
    if (!this.ptr) throw new Error('Resampler used after free()');
    return this.ptr;
  }
}

/** One-shot helper (a fresh resampler, freed afterwards). */
export function resample(input: Int16Array, inRate: SampleRate, outRate: SampleRate): Int16Array {
  const r = new Resampler(inRate, outRate);
  try {
    return r.processCopy(input);
  } finally {
    r.free();
  }
}
