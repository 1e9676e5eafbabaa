// The speexdsp resampler peers, driven through their raw C API (speex_resampler_process_*_int)
// with input preloaded in their WASM heap and preallocated output, i.e. their best case: no
// per-call allocation or copy, which their JS wrappers (e.g. speex-resampler's processChunk, which
// copies in and slices out a new Buffer) would add.
//   speex-resampler               npm package, speexdsp compiled to WASM by emscripten (no SIMD)
//   @echogarden/speex-resampler-wasm/simd   speexdsp with WASM SIMD
import { createRequire } from 'node:module';

interface SpeexModule {
  HEAP16: Int16Array;
  HEAP32: Int32Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _speex_resampler_init(ch: number, inRate: number, outRate: number, q: number, errPtr: number): number;
  _speex_resampler_destroy(st: number): void;
  _speex_resampler_process_interleaved_int?(st: number, inp: number, inLen: number, out: number, outLen: number): number;
  _speex_resampler_process_int?(st: number, ch: number, inp: number, inLen: number, out: number, outLen: number): number;
}

export type SpeexBuild = 'speex-resampler' | 'echogarden-simd';

const modules = new Map<SpeexBuild, SpeexModule>();

export async function loadSpeex(build: SpeexBuild): Promise<SpeexModule> {
  let m = modules.get(build);
  if (m) return m;
  if (build === 'speex-resampler') {
    // The package's default export is a wrapper class that hides the module; its emscripten
    // factory is CommonJS in app/speex_wasm.js.
    const require = createRequire(import.meta.url);
    const factory = require('speex-resampler/app/speex_wasm.js').default as () => Promise<SpeexModule>;
    m = await factory();
  } else {
    const factory = (await import('@echogarden/speex-resampler-wasm/simd')).default as () => Promise<SpeexModule>;
    m = await factory();
  }
  modules.set(build, m);
  return m;
}

/** One speex resampler over a signal preloaded in the module's heap, processed frame by frame. */
export class SpeexFrames {
  private readonly st: number;
  private readonly inPtr: number;
  private readonly outPtr: number;
  private readonly lens: number;
  private readonly outCap: number;
  readonly frames: number;

  constructor(
    private readonly m: SpeexModule,
    inRate: number,
    outRate: number,
    quality: number,
    input: Int16Array,
    private readonly frameIn: number,
  ) {
    const err = m._malloc(4);
    this.st = m._speex_resampler_init(1, inRate, outRate, quality, err);
    if (this.st === 0) throw new Error(`speex_resampler_init(${inRate}, ${outRate}, ${quality}) failed`);
    this.frames = Math.floor(input.length / frameIn);
    this.outCap = Math.ceil((frameIn * outRate) / inRate) + 16;
    this.inPtr = m._malloc(input.length * 2);
    this.outPtr = m._malloc(this.outCap * 2);
    this.lens = m._malloc(8);
    m._free(err);
    m.HEAP16.set(input, this.inPtr >> 1); // HEAP views are re-made by emscripten on growth
  }

  /** Resamples preloaded frame i into the output buffer; returns the samples written. */
  process(i: number): number {
    const m = this.m;
    const h = m.HEAP32;
    const l = this.lens >> 2;
    h[l] = this.frameIn;
    h[l + 1] = this.outCap;
    const inp = this.inPtr + i * this.frameIn * 2;
    if (m._speex_resampler_process_int) m._speex_resampler_process_int(this.st, 0, inp, this.lens, this.outPtr, this.lens + 4);
    else m._speex_resampler_process_interleaved_int!(this.st, inp, this.lens, this.outPtr, this.lens + 4);
    return h[l + 1];
  }

  /** The output of the last process() call. */
  output(n: number): Int16Array {
    return this.m.HEAP16.subarray(this.outPtr >> 1, (this.outPtr >> 1) + n);
  }

  /** Resamples every frame in order and returns the whole output (for quality measurements). */
  runAll(): Int16Array {
    const parts: Int16Array[] = [];
    let total = 0;
    for (let i = 0; i < this.frames; i++) {
      const n = this.process(i);
      parts.push(this.output(n).slice());
      total += n;
    }
    const out = new Int16Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  free(): void {
    this.m._speex_resampler_destroy(this.st);
    this.m._free(this.inPtr);
    this.m._free(this.outPtr);
    this.m._free(this.lens);
  }
}
