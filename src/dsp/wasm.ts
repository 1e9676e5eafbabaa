// Loads the DSP core once per process or worker thread. Synchronous on purpose: the bridge
// cannot serve a frame before it exists, and a sync compile of a small module takes ~1 ms.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface DspExports {
  memory: WebAssembly.Memory;
  dsp_alloc(size: number): number;
  dsp_free(ptr: number): void;
  memory_pages(): number;
  [name: string]: unknown;
}

let instance: DspExports | undefined;

function wasmPath(): string {
  return fileURLToPath(new URL('../../build/dsp.wasm', import.meta.url));
}

export function loadDsp(): DspExports {
  if (instance) return instance;
  const module = new WebAssembly.Module(readFileSync(wasmPath()));
  const inst = new WebAssembly.Instance(module, {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw new Error(`DSP core abort at ${line}:${col}`);
      },
    },
  });
  instance = inst.exports as unknown as DspExports;
  return instance;
}

/** A Uint8Array over WASM memory. Valid until memory grows (only at call start/end). */
export function bytesAt(ptr: number, len: number): Uint8Array {
  return new Uint8Array(loadDsp().memory.buffer, ptr, len);
}

/** An Int16Array over WASM memory. `ptr` must be 2-byte aligned. Same lifetime as bytesAt. */
export function samplesAt(ptr: number, count: number): Int16Array {
  return new Int16Array(loadDsp().memory.buffer, ptr, count);
}
