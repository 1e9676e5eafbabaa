// G.711 per 20 ms frame (160 samples): WASM block kernels vs the plain-JS lookup table
// (bench/baselines/g711-table.ts) vs the npm package alawmulaw. Correctness against G.191 (the JS
// transcription of the STL) is checked once over every input and reported in the table.
import alawmulaw from 'alawmulaw';
import {
  alawDecodeTable, alawEncodeTable, stlAlawCompress, stlAlawExpand, stlUlawCompress, stlUlawExpand,
  ulawDecodeTable, ulawEncodeTable,
} from './baselines/g711-table.js';
import { alloc, dsp, i16At, u8At } from './dsp.js';
import type { Group } from './harness.js';

// alawmulaw is UMD (CommonJS to Node): its namespace only has a default export.
const { alaw, mulaw } = alawmulaw;

const FRAME = 160;
/** Keeps the npm results observable. */
export let sink = 0;

type Law = 'mu-law' | 'A-law';

/** "G.191-exact" or how many of the 65536 inputs / 256 codes differ from the STL. */
function exactness(law: Law, dir: 'encode' | 'decode', impl: (x: Int16Array | Uint8Array) => ArrayLike<number>): string {
  const ref = law === 'mu-law' ? (dir === 'encode' ? stlUlawCompress : stlUlawExpand) : dir === 'encode' ? stlAlawCompress : stlAlawExpand;
  const input = dir === 'encode' ? Int16Array.from({ length: 65536 }, (_, i) => i - 32768) : Uint8Array.from({ length: 256 }, (_, i) => i);
  const out = impl(input);
  let bad = 0;
  for (let i = 0; i < input.length; i++) if (out[i] !== ref(input[i])) bad++;
  return bad === 0 ? 'G.191-exact' : `differs from G.191 on ${bad}/${input.length} ${dir === 'encode' ? 'inputs' : 'codes'}`;
}

export function g711Groups(pcm: Int16Array[]): Group[] {
  const F = pcm.length;
  const pcmPtr = alloc(F * FRAME * 2);
  const codePtr = { 'mu-law': alloc(F * FRAME), 'A-law': alloc(F * FRAME) };
  const outPcmPtr = alloc(FRAME * 2);
  const outCodePtr = alloc(FRAME);
  pcm.forEach((f, i) => i16At(pcmPtr + i * FRAME * 2, FRAME).set(f));
  const scratchAll = alloc(65536 * 3);

  const groups: Group[] = [];
  for (const law of ['mu-law', 'A-law'] as const) {
    const wasmEnc = law === 'mu-law' ? dsp.ulaw_encode_block : dsp.alaw_encode_block;
    const wasmDec = law === 'mu-law' ? dsp.ulaw_decode_block : dsp.alaw_decode_block;
    const jsEnc = law === 'mu-law' ? ulawEncodeTable : alawEncodeTable;
    const jsDec = law === 'mu-law' ? ulawDecodeTable : alawDecodeTable;
    const npm = law === 'mu-law' ? mulaw : alaw;
    const cp = codePtr[law];
    wasmEnc(pcmPtr, cp, F * FRAME);
    const codes = Array.from({ length: F }, (_, i) => u8At(cp + i * FRAME, FRAME).slice());

    // one-off correctness of each implementation over all inputs
    const wasmAll = (enc: boolean) => (x: Int16Array | Uint8Array): ArrayLike<number> => {
      if (enc) {
        i16At(scratchAll, x.length).set(x as Int16Array);
        wasmEnc(scratchAll, scratchAll + 131072, x.length);
        return u8At(scratchAll + 131072, x.length).slice();
      }
      u8At(scratchAll, x.length).set(x as Uint8Array);
      wasmDec(scratchAll, scratchAll + 1024, x.length);
      return i16At(scratchAll + 1024, x.length).slice();
    };
    const jsAll = (enc: boolean) => (x: Int16Array | Uint8Array): ArrayLike<number> => {
      if (enc) { const o = new Uint8Array(x.length); jsEnc(x as Int16Array, o, x.length); return o; }
      const o = new Int16Array(x.length); jsDec(x as Uint8Array, o, x.length); return o;
    };
    const npmAll = (enc: boolean) => (x: Int16Array | Uint8Array): ArrayLike<number> =>
      enc ? npm.encode(x as Int16Array) : npm.decode(x as Uint8Array);

    const jsCodes = new Uint8Array(FRAME);
    const jsPcm = new Int16Array(FRAME);
    const inView = i16At(outPcmPtr, FRAME);
    const codeView = u8At(outCodePtr, FRAME);
    groups.push({
      title: `${law} encode, 160 samples`,
      entries: [
        { name: 'WASM block kernel (in WASM memory)', role: 'ours', frames: F, quality: exactness(law, 'encode', wasmAll(true)),
          fn: () => { for (let i = 0; i < F; i++) wasmEnc(pcmPtr + i * 320, outCodePtr, FRAME); } },
        { name: 'WASM block kernel + copy in/out of JS arrays', role: 'ours', frames: F,
          fn: () => { for (let i = 0; i < F; i++) { inView.set(pcm[i]); wasmEnc(outPcmPtr, outCodePtr, FRAME); jsCodes.set(codeView); } } },
        { name: 'plain JS lookup table', role: 'peer', frames: F, quality: exactness(law, 'encode', jsAll(true)),
          fn: () => { for (let i = 0; i < F; i++) jsEnc(pcm[i], jsCodes, FRAME); } },
        { name: `npm alawmulaw ${law === 'mu-law' ? 'mulaw' : 'alaw'}.encode`, role: 'peer', frames: F, quality: exactness(law, 'encode', npmAll(true)),
          fn: () => { for (let i = 0; i < F; i++) sink += npm.encode(pcm[i]).length; } },
      ],
    });
    groups.push({
      title: `${law} decode, 160 samples`,
      entries: [
        { name: 'WASM block kernel (in WASM memory)', role: 'ours', frames: F, quality: exactness(law, 'decode', wasmAll(false)),
          fn: () => { for (let i = 0; i < F; i++) wasmDec(cp + i * FRAME, outPcmPtr, FRAME); } },
        { name: 'WASM block kernel + copy in/out of JS arrays', role: 'ours', frames: F,
          fn: () => { for (let i = 0; i < F; i++) { codeView.set(codes[i]); wasmDec(outCodePtr, outPcmPtr, FRAME); jsPcm.set(inView); } } },
        { name: 'plain JS lookup table', role: 'peer', frames: F, quality: exactness(law, 'decode', jsAll(false)),
          fn: () => { for (let i = 0; i < F; i++) jsDec(codes[i], jsPcm, FRAME); } },
        { name: `npm alawmulaw ${law === 'mu-law' ? 'mulaw' : 'alaw'}.decode`, role: 'peer', frames: F, quality: exactness(law, 'decode', npmAll(false)),
          fn: () => { for (let i = 0; i < F; i++) sink += npm.decode(codes[i]).length; } },
      ],
    });
  }
  return groups;
}
