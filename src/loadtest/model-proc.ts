// The local Realtime model in its own process, instrumented for the load test. Its CPU is not the
// bridge's, and its clock is the generator's (see clock.ts), so it timestamps:
//   - every input_audio_buffer.append as it arrives (inbound latency), decoding the call id from
//     the appends' loudness (script.ts) to know which call and frame each append is;
//   - every response.output_audio.delta of a session's first response as it is sent (outbound
//     latency), with its length in 8 kHz samples;
//   - session.updated (frames sent before it are not measured: bridges hold or drop them);
//   - error events it sends (the bridge asked for something invalid).
// The hooks sit on the session's socket, before LocalSession's own handler, so the append time is
// when the message came off the socket, not after the model's JSON/VAD work.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { startLocalModel, type LocalModel, type LocalSession } from '../model/local/index.js';
import { announce, serve } from './child.js';
import { monoMs } from './clock.js';
import { botAudio, HeaderDecoder, LOUD_THRESHOLD, probeLoudness } from './script.js';
import { F64List } from './stats.js';

export interface ModelStartArgs {
  /** Audio per delta, ms (20: one Twilio frame per delta, the finest-grained outbound timing). */
  deltaMs: number;
  /** Delta pacing as a multiple of real time. */
  speed: number;
  /** Length of each answer (the bot talks until the caller barges in or hangs up). */
  botSeconds: number;
}

export interface SessionRecord {
  /** Call id decoded from the header, or -1. */
  id: number;
  openedAt: number;
  /** When session.updated was sent; NaN if never. */
  readyAt: number;
  /** Arrival times of the appends from the header's start frame on: [k] is frame headerAt + k. */
  appendTimes: Float64Array;
  /** 1 where the append at the same index was loud (header, barge-in burst): checks the pairing. */
  loud: Uint8Array;
  /** Send times and 8 kHz sample counts of the first response's audio deltas. */
  deltaTimes: Float64Array;
  deltaSamples: Float64Array;
  errors: number;
}

export interface ModelCollect {
  sessions: number;
  /** Sessions whose header was seen but whose id check failed. */
  badHeaders: number;
  /** Measured sessions that never showed a header (e.g. the bridge dropped it). */
  noHeader: number;
  appends: number;
  deltas: number;
  errorEvents: number;
  errorCodes: Record<string, number>;
  records: SessionRecord[];
  loopDelayP99Ms: number;
}

interface Epoch {
  measure: boolean;
  sessions: number;
  appends: number;
  deltas: number;
  errorEvents: number;
  errorCodes: Record<string, number>;
  live: Array<{ rec: LiveRecord; dec: HeaderDecoder }>;
}

interface LiveRecord {
  openedAt: number;
  readyAt: number;
  appendTimes: F64List;
  loud: F64List;
  deltaTimes: F64List;
  deltaSamples: F64List;
  errors: number;
}

const APPEND_PREFIX = Buffer.from('{"type":"input_audio_buffer.append"', 'latin1');
const AUDIO_KEY = Buffer.from('"audio":"', 'latin1');
const DELTA_PREFIX = '{"type":"response.output_audio.delta"';
const DELTA_KEY = '"delta":"';

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  return buf.length >= prefix.length && buf.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

function base64Bytes(s: string, from: number, to: number): number {
  const len = to - from;
  let pad = 0;
  if (len > 0 && s.charCodeAt(to - 1) === 61) pad++;
  if (len > 1 && s.charCodeAt(to - 2) === 61) pad++;
  return (len / 4) * 3 - pad;
}

let model: LocalModel | undefined;
let epoch: Epoch = newEpoch(false);
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();

function newEpoch(measure: boolean): Epoch {
  return { measure, sessions: 0, appends: 0, deltas: 0, errorEvents: 0, errorCodes: {}, live: [] };
}

function instrument(session: LocalSession): void {
  const ws = (session as unknown as { ws?: WebSocket }).ws;
  if (!ws || typeof ws.prependListener !== 'function' || typeof ws.send !== 'function') {
    throw new Error('loadtest: LocalSession no longer exposes its socket as `ws`; update src/loadtest/model-proc.ts');
  }
  const ep = epoch;
  ep.sessions++;
  const rec: LiveRecord = {
    openedAt: monoMs(), readyAt: NaN, appendTimes: new F64List(512), loud: new F64List(512), deltaTimes: new F64List(256),
    deltaSamples: new F64List(256), errors: 0,
  };
  const dec = new HeaderDecoder();
  if (ep.measure) ep.live.push({ rec, dec });
  let inFormat: 'pcm24k' | 'pcmu' = 'pcm24k';
  let outFormat: 'pcm24k' | 'pcmu' = 'pcm24k';
  let firstResponseDone = false;

  ws.prependListener('message', (data: Buffer) => {
    const t = monoMs();
    if (startsWith(data, APPEND_PREFIX)) {
      ep.appends++;
      if (!ep.measure) return;
      const s = data.indexOf(AUDIO_KEY);
      const e = s < 0 ? -1 : data.indexOf(0x22, s + AUDIO_KEY.length);
      const loud = e > 0 && probeLoudness(data, s + AUDIO_KEY.length, e, inFormat) > LOUD_THRESHOLD;
      dec.push(loud);
      if (dec.start >= 0) {
        rec.appendTimes.push(t);
        rec.loud.push(loud ? 1 : 0);
      }
      return;
    }
    try {
      const ev = JSON.parse(data.toString('utf8'));
      if (ev?.type === 'session.update') {
        const fin = ev.session?.audio?.input?.format?.type;
        const fout = ev.session?.audio?.output?.format?.type;
        if (fin) inFormat = fin === 'audio/pcmu' ? 'pcmu' : 'pcm24k';
        if (fout) outFormat = fout === 'audio/pcmu' ? 'pcmu' : 'pcm24k';
      }
    } catch {
      // the session itself reports invalid JSON
    }
  });

  const send = ws.send.bind(ws) as (data: unknown, ...rest: unknown[]) => void;
  (ws as unknown as { send: typeof send }).send = (data: unknown, ...rest: unknown[]) => {
    if (typeof data === 'string') {
      if (data.startsWith(DELTA_PREFIX)) {
        ep.deltas++;
        if (ep.measure && !firstResponseDone) {
          const s = data.indexOf(DELTA_KEY);
          const e = data.indexOf('"', s + DELTA_KEY.length);
          const bytes = base64Bytes(data, s + DELTA_KEY.length, e);
          rec.deltaTimes.push(monoMs());
          rec.deltaSamples.push(outFormat === 'pcmu' ? bytes : bytes / 6);
        }
      } else if (data.startsWith('{"type":"response.done"')) {
        firstResponseDone = true;
      } else if (data.startsWith('{"type":"session.updated"')) {
        if (Number.isNaN(rec.readyAt)) rec.readyAt = monoMs();
      } else if (data.startsWith('{"type":"error"')) {
        rec.errors++;
        ep.errorEvents++;
        let code = 'unknown';
        try {
          code = String(JSON.parse(data).error?.code ?? 'unknown');
        } catch {
          // keep 'unknown'
        }
        ep.errorCodes[code] = (ep.errorCodes[code] ?? 0) + 1;
      }
    }
    send(data, ...rest);
  };
}

serve({
  async start(args: ModelStartArgs) {
    if (model) throw new Error('model already started');
    model = await startLocalModel({
      host: '127.0.0.1',
      port: 0,
      record: false,
      deltaMs: args.deltaMs,
      speed: args.speed,
      greeting: 'none',
      responseAudio: botAudio(args.botSeconds),
      onSession: instrument,
    });
    return { url: model.url, port: model.port };
  },
  /** Starts a new measurement epoch; sessions opened from now on record into it. */
  reset(args: { measure: boolean }) {
    epoch = newEpoch(args.measure);
    loop.reset();
    return true;
  },
  setBot(args: { seconds: number }) {
    if (model) model.options.responseAudio = botAudio(args.seconds);
    return true;
  },
  collect(): ModelCollect {
    const ep = epoch;
    const records: SessionRecord[] = [];
    let badHeaders = 0;
    let noHeader = 0;
    for (const { rec, dec } of ep.live) {
      if (dec.start < 0) noHeader++;
      else if (dec.done && dec.id < 0) badHeaders++;
      if (dec.id < 0) continue;
      records.push({
        id: dec.id, openedAt: rec.openedAt, readyAt: rec.readyAt, appendTimes: rec.appendTimes.toArray(), loud: Uint8Array.from(rec.loud.toArray()),
        deltaTimes: rec.deltaTimes.toArray(), deltaSamples: rec.deltaSamples.toArray(), errors: rec.errors,
      });
    }
    return {
      sessions: ep.sessions, badHeaders, noHeader, appends: ep.appends, deltas: ep.deltas,
      errorEvents: ep.errorEvents, errorCodes: ep.errorCodes, records,
      loopDelayP99Ms: loop.percentile(99) / 1e6,
    } satisfies ModelCollect;
  },
  now() {
    return monoMs();
  },
  async close() {
    await model?.close();
    return true;
  },
});
announce('ready');
