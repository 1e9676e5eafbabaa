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
  warmUp(instance);
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

interface WarmExports extends DspExports {
  call_new(mode: number, ringBytes: number): number;
  call_free(p: number): void;
  call_in_ptr(): number;
  call_set_stream_sid(p: number, len: number): number;
  call_inbound_message(p: number, len: number, botPlaying: number): number;
  call_outbound_message(p: number, len: number): number;
  call_outbound_frame(p: number, allowPartial: number): number;
}

/** Frames of synthetic traffic per call mode in warmUp (see there). */
export const WARM_FRAMES = 500;

/**
 * V8 first runs new WASM code from its baseline compiler (Liftoff) and moves a function to
 * TurboFan only after it has executed about 1.8 MB worth of its code and a background compile has
 * finished. Measured on the call kernels (Node 20, EPYC): in a fresh process the first 1000
 * media messages still ran at Liftoff speed, 3.4-5.5 us each instead of 1.3 us. So before the
 * first real call, WARM_FRAMES frames of synthetic traffic go through both call modes, inbound,
 * outbound and frame building, on call states of their own that are freed afterwards (about
 * 10 ms, once per thread; the first real frames then run at 1.3-1.4 us). Every kernel keeps no
 * state outside its call state that could carry over, and the allocator hands the freed
 * memory to the next call, so nothing else observes the warm-up. Skipped when the module lacks
 * the call kernels.
 */
function warmUp(dsp: DspExports): void {
  const ex = dsp as WarmExports;
  if (typeof ex.call_new !== 'function' || typeof ex.call_outbound_frame !== 'function') return;
  const enc = new TextEncoder();
  const sid = enc.encode('MZ00000000000000000000000000000000');
  const mulaw = new Uint8Array(160);
  const pcm = new Uint8Array(960);
  for (let i = 0; i < 160; i++) mulaw[i] = (i * 37) & 0xff;
  for (let i = 0; i < 480; i++) {
    const v = Math.round(8000 * Math.sin(i * 0.05)) & 0xffff;
    pcm[2 * i] = v & 0xff;
    pcm[2 * i + 1] = v >> 8;
  }
  const delta = enc.encode(
    '{"type":"response.output_audio.delta","event_id":"event_0","response_id":"resp_0","item_id":"item_0",' +
      `"output_index":0,"content_index":0,"delta":"${Buffer.from(pcm).toString('base64')}"}`,
  );
  const payload = Buffer.from(mulaw).toString('base64');
  const inPtr = ex.call_in_ptr();
  const put = (bytes: Uint8Array): number => {
    new Uint8Array(ex.memory.buffer, inPtr, bytes.length).set(bytes);
    return bytes.length;
  };
  for (const mode of [0, 1]) {
    const p = ex.call_new(mode, 8000);
    ex.call_set_stream_sid(p, put(sid));
    for (let i = 0; i < WARM_FRAMES; i++) {
      const media = enc.encode(
        `{"event":"media","sequenceNumber":"${i + 2}","streamSid":"MZ0","media":{"track":"inbound",` +
          `"chunk":"${i + 1}","timestamp":"${20 * i}","payload":"${payload}"}}`,
      );
      ex.call_inbound_message(p, put(media), i & 1);
      ex.call_outbound_message(p, put(delta));
      while (ex.call_outbound_frame(p, 0) > 0);
    }
    ex.call_free(p);
  }
}
