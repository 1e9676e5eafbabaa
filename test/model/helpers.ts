// Shared by the model tests: synthetic caller audio and a recorder for a ModelConnection.
import { encodeMulaw } from '../../src/dsp/g711.js';
import type { ModelConnection } from '../../src/model/client.js';
import type { ServerEvent } from '../../src/model/protocol.js';

/** Silence, then an abrupt full tone (no fade, so its onset sits exactly on a sample), then silence. */
export function burst(rate: number, silenceMs: number, toneMs: number, tailMs: number, amplitude = 0.3): Int16Array {
  const s = (ms: number) => Math.round((ms * rate) / 1000);
  const out = new Int16Array(s(silenceMs) + s(toneMs) + s(tailMs));
  const start = s(silenceMs);
  for (let i = 0; i < s(toneMs); i++) out[start + i] = Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * amplitude * 32767);
  return out;
}

export function pcmBytes(pcm: Int16Array): Buffer {
  const b = Buffer.alloc(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) b.writeInt16LE(pcm[i], i * 2);
  return b;
}

export function pcmFromBytes(b: Uint8Array): Int16Array {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const out = new Int16Array(b.byteLength >> 1);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(i * 2);
  return out;
}

/** The append message bytes for one chunk, as the bridge would build them. */
export function appendBytes(wire: Uint8Array): Buffer {
  return Buffer.from(`{"type":"input_audio_buffer.append","audio":"${Buffer.from(wire).toString('base64')}"}`);
}

/** Streams `pcm` as 20 ms appends in the given wire format through sendRaw. */
export function streamAudio(link: ModelConnection, pcm: Int16Array, format: 'pcm24k' | 'pcmu'): void {
  const rate = format === 'pcmu' ? 8000 : 24000;
  const n = rate / 50;
  for (let off = 0; off < pcm.length; off += n) {
    const chunk = pcm.subarray(off, Math.min(pcm.length, off + n));
    link.sendRaw(appendBytes(format === 'pcmu' ? encodeMulaw(chunk) : pcmBytes(chunk)));
  }
}

export interface Recorder {
  events: ServerEvent[];
  deltas: Buffer[];
  closes: Array<{ code: number; reason: string }>;
  next(type: string, pred?: (ev: any) => boolean): Promise<any>;
  closed(): Promise<{ code: number; reason: string }>;
}

export function record(link: ModelConnection): Recorder {
  const rec: Recorder = {
    events: [],
    deltas: [],
    closes: [],
    next(type, pred = () => true) {
      let from = 0;
      return new Promise((resolve, reject) => {
        const check = () => {
          for (; from < rec.events.length; from++) {
            const ev = rec.events[from] as any;
            if (ev.type === type && pred(ev)) {
              resolve(ev);
              return true;
            }
          }
          if (rec.closes.length) {
            reject(new Error(`closed while waiting for ${type}: ${JSON.stringify(rec.closes[0])}`));
            return true;
          }
          return false;
        };
        if (check()) return;
        waiters.push(check);
      });
    },
    closed() {
      if (rec.closes.length) return Promise.resolve(rec.closes[0]);
      return new Promise((resolve) => waiters.push(() => (rec.closes.length ? (resolve(rec.closes[0]), true) : false)));
    },
  };
  const waiters: Array<() => boolean> = [];
  const poke = () => {
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]()) waiters.splice(i, 1);
  };
  link.onEvent = (ev) => {
    rec.events.push(ev);
    poke();
  };
  link.onAudioDelta = (msg) => {
    // The bridge scans the bytes in place; a test keeps a copy.
    rec.deltas.push(Buffer.from(msg));
  };
  link.onClose = (code, reason) => {
    rec.closes.push({ code, reason });
    poke();
  };
  return rec;
}

/** Concatenated audio bytes of the raw delta messages (parsed here, as the bridge's scanner would). */
export function deltaAudio(deltas: Buffer[], responseId?: string): Buffer {
  const parts: Buffer[] = [];
  for (const d of deltas) {
    const ev = JSON.parse(d.toString('utf8'));
    if (ev.type !== 'response.output_audio.delta') throw new Error(`not a delta: ${ev.type}`);
    if (responseId && ev.response_id !== responseId) continue;
    parts.push(Buffer.from(ev.delta, 'base64'));
  }
  return Buffer.concat(parts);
}
