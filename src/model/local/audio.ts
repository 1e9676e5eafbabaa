// Audio helpers for the local model. It is a test peer and a demo model, not the bridge's hot path:
// plain JS per sample is fine here; G.711 goes through the DSP core so both sides agree bit-exactly.
import { decodeAlaw, decodeMulaw, encodeAlaw, encodeMulaw } from '../../dsp/g711.js';

/** The audio formats the local model accepts (the GA set). */
export type LocalFormat = 'pcm24k' | 'pcmu' | 'pcma';

export function formatRate(f: LocalFormat): number {
  return f === 'pcm24k' ? 24000 : 8000;
}

/** GA format object -> LocalFormat, or an error message. */
export function parseFormat(f: unknown): LocalFormat | string {
  if (typeof f !== 'object' || f === null) return 'format must be an object';
  const o = f as { type?: unknown; rate?: unknown };
  if (o.type === 'audio/pcm') {
    if (o.rate !== undefined && o.rate !== 24000) return `Invalid 'rate': ${String(o.rate)}. Only 24000 is supported for audio/pcm.`;
    return 'pcm24k';
  }
  if (o.type === 'audio/pcmu') return 'pcmu';
  if (o.type === 'audio/pcma') return 'pcma';
  return `Invalid value: '${String(o.type)}'. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.`;
}

export function formatObjectOf(f: LocalFormat): { type: string; rate?: number } {
  if (f === 'pcmu') return { type: 'audio/pcmu' };
  if (f === 'pcma') return { type: 'audio/pcma' };
  return { type: 'audio/pcm', rate: 24000 };
}

/** Wire bytes of one format -> PCM16 at that format's rate. An odd trailing PCM byte is dropped. */
export function decodeAudio(bytes: Uint8Array, f: LocalFormat): Int16Array {
  if (f === 'pcmu') return decodeMulaw(bytes);
  if (f === 'pcma') return decodeAlaw(bytes);
  const n = bytes.length >> 1;
  const out = new Int16Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
  return out;
}

/** PCM16 at the format's rate -> wire bytes of that format (PCM16 little-endian for pcm24k). */
export function encodeAudio(pcm: Int16Array, f: LocalFormat): Uint8Array {
  if (f === 'pcmu') return encodeMulaw(pcm);
  if (f === 'pcma') return encodeAlaw(pcm);
  const out = new Uint8Array(pcm.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < pcm.length; i++) dv.setInt16(i * 2, pcm[i], true);
  return out;
}

/**
 * 8k <-> 24k, good enough for an echo: up by linear interpolation, down by averaging each three
 * samples (a crude low-pass). Other rate pairs are not needed by the local model.
 */
export function resample(pcm: Int16Array, from: number, to: number): Int16Array {
  if (from === to) return pcm;
  if (from === 8000 && to === 24000) {
    const out = new Int16Array(pcm.length * 3);
    for (let i = 0; i < pcm.length; i++) {
      const a = pcm[i];
      const b = i + 1 < pcm.length ? pcm[i + 1] : a;
      out[i * 3] = a;
      out[i * 3 + 1] = Math.round(a + (b - a) / 3);
      out[i * 3 + 2] = Math.round(a + ((b - a) * 2) / 3);
    }
    return out;
  }
  if (from === 24000 && to === 8000) {
    const n = Math.floor(pcm.length / 3);
    const out = new Int16Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.round((pcm[i * 3] + pcm[i * 3 + 1] + pcm[i * 3 + 2]) / 3);
    return out;
  }
  throw new Error(`local model cannot resample ${from} -> ${to}`);
}

/** A rising tone sweep (the default greeting): recognisable, and not speech, in 24 kHz PCM16. */
export function toneSweep(ms = 800, fromHz = 300, toHz = 1200, amplitude = 0.3, rate = 24000): Int16Array {
  const n = Math.round((ms * rate) / 1000);
  const out = new Int16Array(n);
  const fade = Math.min(n >> 1, Math.round(0.02 * rate));
  let phase = 0;
  for (let i = 0; i < n; i++) {
    const f = fromHz + ((toHz - fromHz) * i) / n;
    phase += (2 * Math.PI * f) / rate;
    const env = Math.min(1, i / fade, (n - 1 - i) / fade);
    out[i] = Math.round(Math.sin(phase) * amplitude * 32767 * env);
  }
  return out;
}

export function concatPcm(chunks: Int16Array[], total?: number): Int16Array {
  const n = total ?? chunks.reduce((s, c) => s + c.length, 0);
  const out = new Int16Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c.subarray(0, Math.min(c.length, n - off)), off);
    off += c.length;
    if (off >= n) break;
  }
  return out;
}

export function rms(pcm: Int16Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += pcm[i] * pcm[i];
  return end > start ? Math.sqrt(sum / (end - start)) : 0;
}
