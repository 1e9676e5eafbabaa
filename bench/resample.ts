// Resampling per 20 ms frame: 8k->24k (160 -> 480 samples, the inbound path) and 24k->8k
// (480 -> 160, the outbound path). Ours (assembly/resample.ts, raw exports on WASM memory) vs
// speexdsp at quality 3 and 5 (npm speex-resampler) and the SIMD speexdsp build at quality 5
// (@echogarden/speex-resampler-wasm), all with input preloaded in their own memory. The quality
// column is measured on tones (bench/quality.ts) through the same frame-by-frame streaming.
import { SpeexFrames, loadSpeex, type SpeexBuild } from './baselines/speex.js';
import { alloc, dsp, i16At } from './dsp.js';
import type { Entry, Group } from './harness.js';
import { TONE_AMPLITUDE, componentPowers, folded, rejection, sinad, tone } from './quality.js';

/** Our resampler over a signal preloaded in WASM memory, frame by frame. */
class OursFrames {
  private readonly p: number;
  private readonly inPtr: number;
  private readonly outPtr: number;
  readonly frames: number;
  constructor(inRate: number, outRate: number, input: Int16Array, private readonly frameIn: number) {
    this.p = dsp.resampler_new(inRate, outRate);
    if (this.p === 0) throw new Error(`resampler_new(${inRate}, ${outRate}) failed`);
    this.frames = Math.floor(input.length / frameIn);
    this.inPtr = alloc(input.length * 2);
    this.outPtr = alloc(Math.ceil((frameIn * outRate) / inRate) * 2 + 64);
    i16At(this.inPtr, input.length).set(input);
  }
  process(i: number): number {
    return dsp.resampler_process(this.p, this.inPtr + i * this.frameIn * 2, this.frameIn, this.outPtr);
  }
  delayMs(): number {
    return dsp.resampler_delay_ms(this.p);
  }
  runAll(): Int16Array {
    const out: number[] = [];
    for (let i = 0; i < this.frames; i++) {
      const n = this.process(i);
      out.push(...i16At(this.outPtr, n));
    }
    return Int16Array.from(out);
  }
  free(): void {
    dsp.resampler_free(this.p);
    dsp.dsp_free(this.inPtr);
    dsp.dsp_free(this.outPtr);
  }
}

interface Impl {
  name: string;
  role: 'ours' | 'peer';
  make(input: Int16Array, inRate: number, outRate: number, frameIn: number): Promise<{ process(i: number): number; runAll(): Int16Array; free(): void; frames: number }>;
}

const speex = (build: SpeexBuild, q: number): Impl => ({
  name: `${build === 'speex-resampler' ? 'npm speex-resampler' : '@echogarden/speex-resampler-wasm SIMD'} q${q}`,
  role: 'peer',
  make: async (input, inRate, outRate, frameIn) => new SpeexFrames(await loadSpeex(build), inRate, outRate, q, input, frameIn),
});

const IMPLS: Impl[] = [
  { name: 'WASM polyphase FIR (ours)', role: 'ours', make: async (input, inRate, outRate, frameIn) => new OursFrames(inRate, outRate, input, frameIn) },
  speex('speex-resampler', 3),
  speex('speex-resampler', 5),
  speex('echogarden-simd', 5),
];

export interface ResampleQuality {
  /** SINAD of a 997 Hz tone, dB. */
  sinad997: number;
  /** SINAD of a 3397 Hz tone (the top of the telephone band, where images/aliases are closest), dB. */
  sinad3397: number;
  /** Upsampling: worst image of the 3397 Hz tone (4603, 11397 Hz), dB below the tone. */
  imageRejection?: number;
  /** Downsampling: worst alias of 4603 / 5000 Hz tones (at 3397 / 3000 Hz), dB below the tone. */
  aliasRejection?: number;
}

async function measureQuality(impl: Impl, inRate: number, outRate: number): Promise<ResampleQuality> {
  const frameIn = inRate / 50;
  // A fresh instance per probe, streamed frame by frame like the bench input.
  const through = async (x: Int16Array): Promise<Int16Array> => {
    const r = await impl.make(x, inRate, outRate, frameIn);
    const y = r.runAll();
    r.free();
    return y;
  };
  const y3397 = await through(tone(inRate, 3397, 1));
  const q: ResampleQuality = {
    sinad997: sinad(await through(tone(inRate, 997, 1)), outRate, 997),
    sinad3397: sinad(y3397, outRate, 3397),
  };
  if (outRate > inRate) {
    const [wanted, ...images] = componentPowers(y3397, outRate, [3397, inRate - 3397, folded(inRate + 3397, outRate)]);
    q.imageRejection = Math.min(...images.map((p) => rejection(wanted, p)));
  } else {
    const probes = [4603, 5000];
    const y = await through(tone(inRate, [997, ...probes], 1));
    const tonePower = (TONE_AMPLITUDE / 3) ** 2 / 2;
    const [, ...aliases] = componentPowers(y, outRate, [997, ...probes.map((f) => folded(f, outRate))]);
    q.aliasRejection = Math.min(...aliases.map((p) => rejection(tonePower, p)));
  }
  return q;
}

function describe(q: ResampleQuality): string {
  let s = `SINAD 997 Hz ${q.sinad997.toFixed(1)} dB, 3397 Hz ${q.sinad3397.toFixed(1)} dB`;
  if (q.imageRejection !== undefined) s += `; worst image -${q.imageRejection.toFixed(0)} dB`;
  if (q.aliasRejection !== undefined) s += `; worst in-band alias -${q.aliasRejection.toFixed(0)} dB`;
  return s;
}

export async function resampleGroups(pcm8: Int16Array, pcm24: Int16Array): Promise<{ groups: Group[]; quality: Record<string, ResampleQuality> }> {
  const groups: Group[] = [];
  const quality: Record<string, ResampleQuality> = {};
  for (const [inRate, outRate, input] of [[8000, 24000, pcm8], [24000, 8000, pcm24]] as const) {
    const frameIn = inRate / 50;
    const title = `resample ${inRate / 1000}k->${outRate / 1000}k, ${frameIn} -> ${(frameIn * outRate) / inRate} samples`;
    const entries: Entry[] = [];
    for (const impl of IMPLS) {
      const q = await measureQuality(impl, inRate, outRate);
      quality[`${title} / ${impl.name}`] = q;
      const r = await impl.make(input, inRate, outRate, frameIn);
      const F = r.frames;
      entries.push({ name: impl.name, role: impl.role, frames: F, quality: describe(q), fn: () => { for (let i = 0; i < F; i++) r.process(i); } });
    }
    groups.push({ title, entries });
  }
  return { groups, quality };
}
