// The load generator: many simulated Twilio calls from one process, speaking the Media Streams
// wire protocol (PROTOCOLS.md §1) the way Twilio does:
//   connected, start, then a media frame every 20 ms on a drift-free per-call schedule (calls'
//   phases spread over the 20 ms period, as independent calls are), marks echoed when the
//   playback of the audio before them would have finished, pending marks echoed at once on
//   `clear`, and `stop` at the end, after which the socket is closed.
// Lighter than src/simulate (no WAV, no per-call playback buffer of samples): it keeps per-frame
// timestamps for the latency join with the model process, and counters.
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { parseServerMessage } from '../twilio/protocol.js';
import { monoMs } from './clock.js';
import { FRAME_MS, ID_SPACE, LOUD_B64, planCall, SILENCE_B64, SPEECH_B64, type CallPlan } from './script.js';
import { F64List, summarize, type Summary } from './stats.js';

export interface LoadOptions {
  /** Media-stream endpoint, e.g. ws://127.0.0.1:5050/media-stream */
  url: string;
  /** Calls to make in total. */
  calls: number;
  /** Calls alive at once (default: all of them). */
  concurrency?: number;
  /** Length of each call, s. */
  seconds: number;
  /** The first wave of calls starts spread over this many ms (default: 5 ms per call, 200..3000). */
  rampMs?: number;
  /** First call id (ids are carried in the audio modulo ID_SPACE). */
  idBase?: number;
  /** Keep per-frame timestamps and send the id header (default true). */
  measure?: boolean;
  /** Barge in near the end of each call (default true). */
  bargeIn?: boolean;
  /** Give up on a WebSocket handshake after this long (default 10000). */
  connectTimeoutMs?: number;
}

/** Per-call data for the latency join (measure runs only). */
export interface CallRecord {
  id: number;
  headerAt: number;
  /** Frame index of the barge-in burst (sent whether or not the bot was audible), or -1. */
  bargeAt: number;
  /** Send time of each media frame (NaN: never sent). */
  sendTimes: Float64Array;
  /** Arrival time and audio bytes of each media message before the barge-in (or a `clear`). */
  recvTimes: Float64Array;
  recvBytes: Float64Array;
  bargeSentAt: number;
  clearAt: number;
}

export interface LoadResult {
  calls: number;
  /** Calls that ran to `stop` with no error. */
  completed: number;
  startedAt: number;
  endedAt: number;
  /** From when every call of the first wave was up until the first call ended (steady state). */
  steadyFrom: number;
  steadyTo: number;
  callSeconds: number;
  framesSent: number;
  mediaIn: number;
  bytesIn: number;
  marksIn: number;
  marksEchoed: number;
  clears: number;
  /** Generator lateness sending frames (actual - scheduled), ms: the generator's own limit. */
  sendLag: Summary;
  loopDelayP99Ms: number;
  errors: Record<string, number>;
  errorSamples: string[];
  barge: {
    attempted: number;
    cleared: number;
    /** Barge-ins with no `clear` (the bot may still have stopped: see silenced). */
    missed: number;
    /** Barge-in frames sent before any bot audio had arrived (not counted as barge-ins). */
    noBotAudio: number;
    /** Clears that came before the caller barged in. */
    falseClears: number;
    /** Onset frame sent -> `clear` received, ms. */
    latencies: Float64Array;
    /** Onset frame sent -> the caller stops hearing the bot (clear, or the bot's audio ran out), ms. */
    silenced: Float64Array;
    /** Barge-ins after which the bot was still heard when the call ended. */
    notSilenced: number;
  };
  records: CallRecord[];
}

const MEDIA_PREFIX = Buffer.from('{"event":"media"', 'latin1');
const PAYLOAD_KEY = Buffer.from('"payload":"', 'latin1');
const PAYLOADS = [SILENCE_B64, LOUD_B64, SPEECH_B64];
const MAX_ERROR_SAMPLES = 20;

interface PendingMark {
  name: string;
  due: number;
}

class SimCall {
  ws!: WebSocket;
  readonly sid: string;
  readonly callSid: string;
  readonly plan: CallPlan;
  t0 = NaN;
  open = false;
  next = 0;
  seq = 1;
  stopSent = false;
  finished = false;
  failed = false;
  validatedMedia = 0;
  sidNeedle: Buffer;
  // playback model
  playEnd = 0;
  marks: PendingMark[] = [];
  // measurement
  sendTimes: Float64Array | null;
  recvTimes: F64List | null;
  recvBytes: F64List | null;
  lastMediaAt = NaN;
  phase1 = true;
  bargeSentAt = NaN;
  clearAt = NaN;
  /** When the caller stopped hearing the bot after the barge-in (clear, or its audio ran out). */
  silencedAt = NaN;
  endedAt = NaN;

  constructor(readonly index: number, readonly id: number, plan: CallPlan, measure: boolean) {
    this.plan = plan;
    const hex = randomBytes(16).toString('hex');
    this.sid = `MZ${hex}`;
    this.callSid = `CA${hex}`;
    this.sidNeedle = Buffer.from(`"streamSid":"${this.sid}"`, 'latin1');
    this.sendTimes = measure ? new Float64Array(plan.totalFrames).fill(NaN) : null;
    this.recvTimes = measure ? new F64List(1024) : null;
    this.recvBytes = measure ? new F64List(1024) : null;
  }
}

/** Runs one load: resolves when every call has ended. */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const calls = Math.max(0, Math.floor(opts.calls));
  const concurrency = Math.max(1, Math.min(calls, Math.floor(opts.concurrency ?? calls)));
  const wave = concurrency;
  const rampMs = opts.rampMs ?? Math.min(3000, Math.max(200, wave * 5));
  const spacing = rampMs / wave;
  const measure = opts.measure ?? true;
  const bargeIn = opts.bargeIn ?? true;
  const idBase = opts.idBase ?? 0;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;

  const errors: Record<string, number> = {};
  const errorSamples: string[] = [];
  const lag = new F64List(4096);
  const bargeLat = new F64List(256);
  const silenced = new F64List(256);
  let notSilenced = 0;
  const records: CallRecord[] = [];
  const live = new Set<SimCall>();
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  let started = 0;
  let ended = 0;
  let completed = 0;
  let framesSent = 0;
  let mediaIn = 0;
  let bytesIn = 0;
  let marksIn = 0;
  let marksEchoed = 0;
  let clears = 0;
  let callMs = 0;
  let bargeAttempted = 0;
  let bargeMissed = 0;
  let noBotAudio = 0;
  let falseClears = 0;
  let steadyFrom = NaN;
  let steadyTo = NaN;
  let upInFirstWave = 0;
  const startedAt = monoMs();

  const error = (c: SimCall | null, kind: string, detail = '') => {
    errors[kind] = (errors[kind] ?? 0) + 1;
    if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(`call ${c?.index ?? '-'}: ${kind}${detail ? ` (${detail})` : ''}`);
    if (c) c.failed = true;
  };

  return new Promise<LoadResult>((resolve) => {
    const finish = (c: SimCall) => {
      if (c.finished) return;
      c.finished = true;
      c.endedAt = monoMs();
      live.delete(c);
      ended++;
      if (!Number.isNaN(c.t0)) callMs += Math.max(0, (c.stopSent ? c.t0 + c.plan.totalFrames * FRAME_MS : c.endedAt) - c.t0);
      if (Number.isNaN(steadyTo) && c.index < wave) steadyTo = c.endedAt;
      if (!Number.isNaN(c.bargeSentAt)) {
        if (Number.isNaN(c.clearAt)) bargeMissed++;
        if (Number.isNaN(c.silencedAt) && c.endedAt - c.lastMediaAt > 250) c.silencedAt = c.playEnd;
        if (Number.isNaN(c.silencedAt)) notSilenced++;
        else silenced.push(Math.max(0, c.silencedAt - c.bargeSentAt));
      }
      if (c.stopSent && !c.failed) completed++;
      if (c.sendTimes) {
        records.push({
          id: c.id, headerAt: c.plan.headerAt, bargeAt: c.plan.bargeAt, sendTimes: c.sendTimes, recvTimes: c.recvTimes!.toArray(),
          recvBytes: c.recvBytes!.toArray(), bargeSentAt: c.bargeSentAt, clearAt: c.clearAt,
        });
      }
      if (ended === calls) done();
    };

    const startCall = (index: number) => {
      const id = (idBase + index) % ID_SPACE;
      const c = new SimCall(index, id, planCall(id, opts.seconds, { measure, bargeIn }), measure);
      started++;
      live.add(c);
      let ws: WebSocket;
      try {
        ws = new WebSocket(opts.url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: connectTimeoutMs });
      } catch (e) {
        error(c, 'connect_failed', (e as Error).message);
        finish(c);
        return;
      }
      c.ws = ws;
      ws.on('open', () => {
        c.open = true;
        c.t0 = monoMs();
        ws.send('{"event":"connected","protocol":"Call","version":"1.0.0"}');
        ws.send(JSON.stringify({
          event: 'start', sequenceNumber: String(c.seq++), streamSid: c.sid,
          start: {
            accountSid: 'ACloadtest', streamSid: c.sid, callSid: c.callSid, tracks: ['inbound'],
            customParameters: { loadtest: String(c.id) },
            mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
          },
        }));
        if (c.index < wave && ++upInFirstWave === wave) steadyFrom = monoMs();
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => onMessage(c, data, isBinary));
      ws.on('unexpected-response', (_req, res) => {
        error(c, 'upgrade_rejected', `HTTP ${res.statusCode}`);
        ws.terminate();
      });
      ws.on('error', (e) => {
        if (!c.open) error(c, 'connect_failed', e.message);
        else if (!c.stopSent) error(c, 'socket_error', e.message);
      });
      ws.on('close', (code) => {
        if (c.open && !c.stopSent && !c.failed) error(c, 'closed_by_bridge', `code ${code} after ${c.next} frames`);
        c.open = false;
        finish(c);
      });
    };

    const echoMark = (c: SimCall, name: string) => {
      if (!c.open) return;
      c.ws.send(`{"event":"mark","sequenceNumber":"${c.seq++}","streamSid":"${c.sid}","mark":{"name":${JSON.stringify(name)}}}`);
      marksEchoed++;
    };

    const onMessage = (c: SimCall, data: Buffer, isBinary: boolean) => {
      const t = monoMs();
      if (isBinary) {
        error(c, 'binary_frame');
        return;
      }
      if (data.length > MEDIA_PREFIX.length && data.compare(MEDIA_PREFIX, 0, MEDIA_PREFIX.length, 0, MEDIA_PREFIX.length) === 0
        && c.validatedMedia >= 2) {
        // Hot path: the first media messages of each call were validated in full below.
        const s = data.indexOf(PAYLOAD_KEY);
        const e = s < 0 ? -1 : data.indexOf(0x22, s + PAYLOAD_KEY.length);
        if (e < 0 || data.indexOf(c.sidNeedle) < 0) {
          error(c, 'invalid_media', data.toString('latin1', 0, 120));
          return;
        }
        const len = e - s - PAYLOAD_KEY.length;
        const pad = (data[e - 1] === 0x3d ? 1 : 0) + (data[e - 2] === 0x3d ? 1 : 0);
        onMedia(c, (len / 4) * 3 - pad, t);
        return;
      }
      const text = data.toString('utf8');
      const parsed = parseServerMessage(text);
      if (!parsed.ok) {
        error(c, 'invalid_message', `${parsed.error}: ${text.slice(0, 120)}`);
        return;
      }
      const m = parsed.message;
      if (m.streamSid !== c.sid) {
        error(c, 'wrong_stream_sid', m.streamSid);
        return;
      }
      switch (m.event) {
        case 'media':
          c.validatedMedia++;
          onMedia(c, Buffer.byteLength(m.media.payload, 'base64'), t);
          return;
        case 'mark':
          marksIn++;
          if (c.playEnd <= t) echoMark(c, m.mark.name);
          else c.marks.push({ name: m.mark.name, due: c.playEnd });
          return;
        case 'clear':
          clears++;
          for (const mk of c.marks) echoMark(c, mk.name);
          c.marks.length = 0;
          c.playEnd = t;
          if (!Number.isNaN(c.bargeSentAt) && Number.isNaN(c.clearAt)) {
            c.clearAt = t;
            if (Number.isNaN(c.silencedAt)) c.silencedAt = Math.min(t, c.playEnd);
            bargeLat.push(t - c.bargeSentAt);
          } else if (Number.isNaN(c.bargeSentAt)) {
            falseClears++;
          }
          c.phase1 = false;
          return;
      }
    };

    const onMedia = (c: SimCall, bytes: number, t: number) => {
      mediaIn++;
      bytesIn += bytes;
      // A pause before this frame after a barge-in: the interrupted answer had run out by then.
      if (!Number.isNaN(c.bargeSentAt) && Number.isNaN(c.silencedAt) && t - c.lastMediaAt > 250) c.silencedAt = c.playEnd;
      c.playEnd = Math.max(c.playEnd, t) + bytes / 8;
      if (c.recvTimes && c.phase1) {
        c.recvTimes.push(t);
        c.recvBytes!.push(bytes);
      }
      c.lastMediaAt = t;
    };

    const sendFrame = (c: SimCall, now: number) => {
      const k = c.next++;
      const kind = c.plan.kinds[k];
      const ts = (k + 1) * FRAME_MS;
      lag.push(now - (c.t0 + ts));
      if (c.plan.bargeAt === k) {
        // The first response's audio is measured up to here: after it the bot is interrupted.
        c.phase1 = false;
        // A barge-in only means something during the bot's answer (which lasts past the end of
        // the call once started): it has started if any of its audio has arrived.
        if (!Number.isNaN(c.lastMediaAt)) {
          c.bargeSentAt = now;
          bargeAttempted++;
        } else {
          noBotAudio++;
        }
      }
      c.ws.send(`{"event":"media","sequenceNumber":"${c.seq++}","streamSid":"${c.sid}","media":{"track":"inbound","chunk":"${k + 1}","timestamp":"${ts}","payload":"${PAYLOADS[kind]}"}}`);
      if (c.sendTimes) c.sendTimes[k] = now;
      framesSent++;
    };

    const endCall = (c: SimCall) => {
      c.stopSent = true;
      c.ws.send(JSON.stringify({
        event: 'stop', sequenceNumber: String(c.seq++), streamSid: c.sid,
        stop: { accountSid: 'ACloadtest', callSid: c.callSid },
      }));
      c.ws.close(1000);
      const ws = c.ws;
      setTimeout(() => {
        if (!c.finished) ws.terminate();
      }, 3000).unref();
    };

    const tick = () => {
      const now = monoMs();
      while (started < calls && live.size < concurrency && (started >= wave || now >= startedAt + started * spacing)) {
        startCall(started);
      }
      for (const c of live) {
        if (!c.open || c.stopSent) continue;
        if (Number.isNaN(c.t0)) continue;
        while (c.next < c.plan.totalFrames && now >= c.t0 + (c.next + 1) * FRAME_MS) sendFrame(c, now);
        while (c.marks.length > 0 && c.marks[0].due <= now) echoMark(c, c.marks.shift()!.name);
        if (c.next >= c.plan.totalFrames) endCall(c);
      }
    };

    const timer = setInterval(tick, 1);
    const done = () => {
      clearInterval(timer);
      loop.disable();
      const endedAt = monoMs();
      resolve({
        calls, completed, startedAt, endedAt,
        steadyFrom: Number.isNaN(steadyFrom) ? startedAt : steadyFrom,
        steadyTo: Number.isNaN(steadyTo) ? endedAt : steadyTo,
        callSeconds: callMs / 1000, framesSent, mediaIn, bytesIn, marksIn, marksEchoed, clears,
        sendLag: summarize(lag.toArray()), loopDelayP99Ms: loop.percentile(99) / 1e6,
        errors, errorSamples,
        barge: { attempted: bargeAttempted, cleared: bargeLat.length, missed: bargeMissed, noBotAudio, falseClears, latencies: bargeLat.toArray(), silenced: silenced.toArray(), notSilenced },
        records,
      });
    };
    if (calls === 0) done();
    else tick();
  });
}
