// Shared rig for the end-to-end tests: the local model, the bridge and simulated Twilio calls over
// real loopback sockets on ephemeral ports, in one process. Everything here measures; nothing
// here decides what the bridge should do.
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import WebSocket from 'ws';
import { readWav } from '../../src/audio/wav.js';
import { loadConfig, type Config } from '../../src/config.js';
import { decodeMulaw, encodeMulaw } from '../../src/dsp/g711.js';
import { resample as dspResample, type SampleRate } from '../../src/dsp/resample.js';
import { startLocalModel, type LocalModel, type LocalModelOptions } from '../../src/model/local/index.js';
import { startBridge, type BridgeDeps, type BridgeServer } from '../../src/server.js';

// ---- fixtures -------------------------------------------------------------------------------------

export const FRAME_MS = 20;
export const FRAME = 160;

const fixturePath = (name: string): string =>
  fileURLToPath(new URL(`../fixtures/speech/${name}`, import.meta.url));

export interface ManifestFile {
  file: string;
  samples: number;
  kind: string;
  onsetMs?: number;
  onsetBlock?: number;
  speechStartBlock?: number;
  botStartMs?: number;
  botEndMs?: number;
  delayMs?: number;
  gainDb?: number;
  noiseLevelDbfs?: number;
  caller?: { file: string; startMs: number; levelDbfs: number } | null;
  [k: string]: unknown;
}

let manifestCache: { files: ManifestFile[] } | undefined;
export function manifest(): { files: ManifestFile[] } {
  manifestCache ??= JSON.parse(readFileSync(fixturePath('manifest.json'), 'utf8'));
  return manifestCache!;
}

export function fixtureInfo(name: string): ManifestFile {
  const f = manifest().files.find((x) => x.file === name);
  if (!f) throw new Error(`fixture ${name} is not in the manifest`);
  return f;
}

/** A speech fixture's mu-law codes (what Twilio would carry) and their decoded PCM. */
export function fixtureMulaw(name: string): Uint8Array {
  const w = readWav(readFileSync(fixturePath(name)));
  if (w.sampleRate !== 8000) throw new Error(`${name}: ${w.sampleRate} Hz`);
  if (w.codec === 'mulaw') return w.data;
  if (w.codec === 'pcm16') return encodeMulaw(w.data);
  throw new Error(`${name}: unexpected codec ${w.codec}`);
}

export function fixturePcm(name: string): Int16Array {
  return decodeMulaw(fixtureMulaw(name));
}

export function silenceMulaw(ms: number): Uint8Array {
  return new Uint8Array(ms * 8).fill(0xff);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---- the project's resampler (src/dsp/resample.ts: the kernel the bridge runs per frame) -------------

/** One shot; the kernel gives the same output frame by frame, so this is what the bridge computes. */
export function resample(pcm: Int16Array, from: SampleRate, to: SampleRate): Int16Array {
  return dspResample(pcm, from, to);
}

// ---- signals and scripted model messages ----------------------------------------------------------

export function scaled(pcm: Int16Array, db: number): Int16Array {
  const g = 10 ** (db / 20);
  return pcm.map((x) => Math.round(x * g));
}

export function tone(ms: number, hz: number, rate = 24000, amp = 8000): Int16Array {
  return Int16Array.from({ length: (ms * rate) / 1000 }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate)));
}

/** A response.output_audio.delta message as the model sends it (24 kHz PCM16). */
export function delta(itemId: string, pcm24: Int16Array, responseId = 'resp_scripted'): string {
  return JSON.stringify({
    type: 'response.output_audio.delta', event_id: `ev_${Math.random().toString(16).slice(2)}`, response_id: responseId,
    item_id: itemId, output_index: 0, content_index: 0,
    delta: Buffer.from(pcm24.buffer, pcm24.byteOffset, pcm24.byteLength).toString('base64'),
  });
}

// ---- signal comparison --------------------------------------------------------------------------------

/**
 * Best normalized cross-correlation of `a` against `b` over lags in [minLag, maxLag] (a[i + lag]
 * vs b[i]), computed over `b`'s span [from, to). Returns the lag and the coefficient.
 */
export function bestCorrelation(
  a: ArrayLike<number>, b: ArrayLike<number>, minLag: number, maxLag: number, from = 0, to = b.length,
): { lag: number; r: number } {
  let best = { lag: 0, r: -Infinity };
  for (let lag = minLag; lag <= maxLag; lag++) {
    let sab = 0, saa = 0, sbb = 0;
    for (let i = from; i < to; i++) {
      const j = i + lag;
      const x = j >= 0 && j < a.length ? a[j] : 0;
      const y = b[i];
      sab += x * y;
      saa += x * x;
      sbb += y * y;
    }
    const r = saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
    if (r > best.r) best = { lag, r };
  }
  return best;
}

export function rmsDb(pcm: ArrayLike<number>, from = 0, to = pcm.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += pcm[i] * pcm[i];
  return 10 * Math.log10(s / Math.max(1, to - from) / 32768 ** 2 + 1e-12);
}

// ---- logs ---------------------------------------------------------------------------------------------

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export class LogSink {
  readonly lines: LogLine[] = [];
  readonly logger: pino.Logger;
  constructor(level = 'info') {
    const stream = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const l of chunk.toString('utf8').split('\n')) if (l) this.lines.push(JSON.parse(l));
        cb();
      },
    });
    this.logger = pino({ level, base: undefined }, stream);
  }
  find(re: RegExp): LogLine[] {
    return this.lines.filter((l) => re.test(l.msg));
  }
}

// ---- the rig ------------------------------------------------------------------------------------------

export interface Rig {
  local: LocalModel;
  bridge: BridgeServer;
  config: Config;
  logs: LogSink;
  /** ws://127.0.0.1:PORT/media-stream */
  wsUrl: string;
  httpUrl: string;
  close(): Promise<void>;
}

/** Local model answers nothing on its own unless a test asks: no server-VAD turns, no greeting tone. */
export const QUIET_MODEL: LocalModelOptions = { vadRms: 1e9, greeting: 'none' };

export async function startRig(
  env: Record<string, string> = {},
  modelOpts: LocalModelOptions = QUIET_MODEL,
  deps: BridgeDeps = {},
): Promise<Rig> {
  const local = await startLocalModel({ host: '127.0.0.1', port: 0, ...modelOpts });
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', ...env });
  config.openaiBaseUrl = local.url;
  const logs = new LogSink('debug');
  const bridge = await startBridge(config, logs.logger, deps);
  return {
    local,
    bridge,
    config,
    logs,
    wsUrl: `ws://127.0.0.1:${bridge.port}/media-stream`,
    httpUrl: `http://127.0.0.1:${bridge.port}`,
    async close() {
      bridge.close();
      await local.close();
    },
  };
}

/** Polls `cond` every few ms until it holds (or fails after `ms` of real time). */
export async function until(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// ---- a raw Twilio side, for lifecycle and bad-input tests ------------------------------------------


export interface Received {
  text: string;
  json: { event?: string; [k: string]: unknown } | null;
}

/** A hand-driven Twilio media-stream socket: send what a test wants, record what comes back. */
export class TwilioSocket {
  readonly received: Received[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly closed: Promise<number>;
  readonly streamSid: string;
  readonly callSid: string;
  private seq = 0;
  private chunk = 0;

  private constructor(readonly ws: WebSocket, sid: string) {
    this.streamSid = `MZ${sid}`;
    this.callSid = `CA${sid}`;
    ws.on('message', (d: Buffer, isBinary: boolean) => {
      const text = d.toString('utf8');
      let json = null;
      if (!isBinary) try { json = JSON.parse(text); } catch { /* recorded as text */ }
      this.received.push({ text, json });
    });
    this.closed = new Promise((resolve) => ws.on('close', (code: number, reason: Buffer) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      resolve(code);
    }));
  }

  static async open(url: string, headers: Record<string, string> = {}, sid = Math.random().toString(16).slice(2)): Promise<TwilioSocket> {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.on('error', () => {});
    const t = new TwilioSocket(ws, sid);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('close', () => reject(new Error('closed before open')));
    });
    return t;
  }

  send(obj: object | string): void {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  connected(): void {
    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
  }

  start(parameters: Record<string, string> = {}): void {
    this.send({
      event: 'start', sequenceNumber: String(++this.seq), streamSid: this.streamSid,
      start: {
        accountSid: 'ACtest', streamSid: this.streamSid, callSid: this.callSid, tracks: ['inbound'],
        customParameters: parameters, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
    });
  }

  /** One 20 ms frame of mu-law; timestamps follow the frame count. */
  media(codes: Uint8Array = silenceMulaw(20), payload?: string): void {
    this.chunk++;
    this.send({
      event: 'media', sequenceNumber: String(++this.seq), streamSid: this.streamSid,
      media: { track: 'inbound', chunk: String(this.chunk), timestamp: String(this.chunk * 20), payload: payload ?? Buffer.from(codes).toString('base64') },
    });
  }

  stop(): void {
    this.send({ event: 'stop', sequenceNumber: String(++this.seq), streamSid: this.streamSid, stop: { accountSid: 'ACtest', callSid: this.callSid } });
  }

  events(name: string): Received[] {
    return this.received.filter((r) => r.json?.event === name);
  }
}
