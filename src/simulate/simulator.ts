// A Twilio call, simulated: connects to a media-stream endpoint the way Twilio does, streams a
// caller's audio in 20 ms mu-law frames on a drift-free real-time (or N x) schedule, plays what
// the server sends back through a model of Twilio's playback buffer (marks, clear), validates
// the server's messages and measures latencies. See PROTOCOLS.md §1 for the wire format.
//
// Time: the call timeline starts when `start` is sent (t = 0). Media frame k carries caller audio
// [20k, 20k+20) ms and is sent at call time 20(k+1) with `timestamp` = 20(k+1), so the first
// timestamp is 20, not 0. Call time = real elapsed time x speed, so a 10x run sends frames every
// 2 ms of real time and plays received audio 10 x faster; everything reported is in call time.

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { decodeAlaw, decodeMulaw, encodeMulaw } from '../dsp/g711.js';
import { readWavFile, WavError } from '../audio/wav.js';
import { parseServerMessage } from '../twilio/protocol.js';
import { computeSignature, SIGNATURE_HEADER } from '../twilio/signature.js';
import { PlaybackModel, SAMPLES_PER_MS, type PlaybackRun } from './playback.js';
import { detectUtterances, type Utterance, type UtteranceOptions } from './utterances.js';

export type { Utterance } from './utterances.js';

const FRAME_MS = 20;
const FRAME_SAMPLES = FRAME_MS * SAMPLES_PER_MS;
const MAX_BUFFER_SAMPLES = 10 * 60 * 8000; // Twilio error 31931 past 10 minutes buffered
const MAX_VIOLATION_MESSAGES = 50;

export interface DtmfEvent {
  /** Call time at which the digit is sent (before the media frame due at or after it). */
  atMs: number;
  digit: string;
}

export interface SimulateOptions {
  /** Media-stream endpoint, e.g. ws://localhost:5050/media-stream. */
  url: string;
  /** Caller audio, 8 kHz mono: PCM16 samples, or mu-law codes as `{ mulaw }`. */
  caller: Int16Array | { mulaw: Uint8Array };
  /** Sign the upgrade with this Twilio auth token (header x-twilio-signature). */
  authToken?: string;
  /** URL the signature covers; default: `url` with ws->wss, http->https (the public URL). */
  signUrl?: string;
  /** Sent in start.customParameters (what <Parameter> elements would carry). */
  parameters?: Record<string, string>;
  /** Call time runs this many times faster than real time (default 1). */
  speed?: number;
  /** Silence streamed after the caller's audio before `stop`, so the bot can answer (default 2000). */
  tailMs?: number;
  dtmf?: DtmfEvent[];
  /** Caller utterances; default: detected from the caller audio by energy. */
  callerUtterances?: Utterance[];
  /** Caller speech onsets for barge-in measurement; default: the utterances' starts. */
  callerOnsetsMs?: number[];
  utteranceDetection?: UtteranceOptions;
  /** Playback gaps shorter than this inside a response count as underruns (default 1000). */
  underrunGapMs?: number;
  /** Real-time limit for the WebSocket handshake (default 10000). */
  connectTimeoutMs?: number;
  /** Extra upgrade headers. */
  headers?: Record<string, string>;
  accountSid?: string;
  callSid?: string;
  streamSid?: string;
  /** Called for every message sent and received (call time in ms), e.g. for a verbose CLI log. */
  onMessage?: (dir: 'out' | 'in', atMs: number, text: string) => void;
}

export interface BargeIn {
  /** Caller onset, call time. */
  onsetMs: number;
  /** Call time the `clear` arrived, or null if the bot kept talking to the end of its audio. */
  clearAtMs: number | null;
  latencyMs: number | null;
}

export interface SimReport {
  accountSid: string;
  callSid: string;
  streamSid: string;
  /** Call time from `start` to `stop` (or to the server closing). */
  callDurationMs: number;
  framesSent: number;
  dtmfSent: number;
  /** `media` messages from the server and their audio. */
  framesReceived: number;
  bytesReceived: number;
  audioReceivedMs: number;
  /** Audio that actually played (received minus what clear dropped or the call end cut). */
  audioPlayedMs: number;
  /** Call time from `start` to the first bot audio playing. */
  firstAudioMs: number | null;
  callerUtterances: Utterance[];
  /** From the end of the caller's first utterance to the next bot audio starting. */
  responseLatencyMs: number | null;
  /** The same for every utterance (null where no audio followed before the next utterance/end). */
  responseLatenciesMs: (number | null)[];
  /** Caller onsets that fell while bot audio was playing. */
  bargeIns: BargeIn[];
  /** Latency of the first barge-in that got a clear. */
  bargeInLatencyMs: number | null;
  clearsReceived: number;
  /** Gaps in playback inside a response (see underrunGapMs) and their total length. */
  underruns: number;
  underrunMs: number;
  /** Playback runs, ms on the call timeline. */
  playback: { startMs: number; endMs: number; endedByClear: boolean }[];
  marksReceived: number;
  marksEchoed: number;
  marksEchoedByClear: number;
  /** Marks still queued when the call ended (never echoed). */
  marksPending: number;
  violations: number;
  violationMessages: string[];
  /** Messages that arrived after `stop` was sent (ignored, not violations). */
  messagesAfterStop: number;
  closeCode: number;
  closeReason: string;
  closedBy: 'client' | 'server';
  /** What the caller heard, 8 kHz, aligned to the call timeline (silence where nothing played). */
  heard: Int16Array;
  heardMulaw: Uint8Array;
}

/** The upgrade was refused or never completed. */
export class SimulateConnectError extends Error {
  override name = 'SimulateConnectError';
  constructor(
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
  }
}

const sid = (prefix: string): string => prefix + randomBytes(16).toString('hex');

/** The public URL Twilio would sign: ws -> wss, http -> https. */
export function defaultSignUrl(url: string): string {
  return url.replace(/^ws:/i, 'wss:').replace(/^http:/i, 'https:');
}

/** 8 kHz mono caller audio from a WAV (PCM16, mu-law or A-law; multi-channel PCM16 downmixed). */
export async function loadCallerWav(path: string): Promise<Int16Array | { mulaw: Uint8Array }> {
  const w = await readWavFile(path);
  if (w.sampleRate !== 8000) {
    throw new WavError(`${path}: caller audio is ${w.sampleRate} Hz; the simulator needs 8000 Hz (e.g. sox ${path} -r 8000 -c 1 -b 16 caller-8k.wav)`);
  }
  if (w.codec === 'pcm16') return w.data;
  return w.codec === 'mulaw' ? { mulaw: w.data } : decodeAlaw(w.data);
}

function underrunStats(runs: PlaybackRun[], gapSamples: number): { underruns: number; underrunSamples: number; responses: PlaybackRun[] } {
  let underruns = 0;
  let underrunSamples = 0;
  const responses: PlaybackRun[] = [];
  for (const r of runs) {
    const prev = responses[responses.length - 1];
    const gap = prev ? r.start - prev.end : Infinity;
    if (prev && !prev.endedByClear && gap < gapSamples) {
      underruns++;
      underrunSamples += gap;
      prev.end = r.end;
      prev.endedByClear = r.endedByClear;
    } else {
      responses.push({ ...r });
    }
  }
  return { underruns, underrunSamples, responses };
}

/** Runs one simulated call to completion. Rejects on bad options or if the connection cannot be made. */
export async function simulateCall(opts: SimulateOptions): Promise<SimReport> {
  const speed = opts.speed ?? 1;
  if (!(speed > 0) || !Number.isFinite(speed)) throw new Error(`speed must be a positive number, got ${speed}`);
  const tailMs = opts.tailMs ?? 2000;
  if (!(tailMs >= 0)) throw new Error(`tailMs must be >= 0, got ${tailMs}`);

  const callerPcm = opts.caller instanceof Int16Array ? opts.caller : decodeMulaw(opts.caller.mulaw);
  const callerCodes = opts.caller instanceof Int16Array ? encodeMulaw(opts.caller) : opts.caller.mulaw;
  const inputFrames = Math.ceil(callerCodes.length / FRAME_SAMPLES);
  const totalFrames = inputFrames + Math.ceil(tailMs / FRAME_MS);
  const frames = new Uint8Array(totalFrames * FRAME_SAMPLES).fill(0xff);
  frames.set(callerCodes);

  const utterances = opts.callerUtterances ?? detectUtterances(callerPcm, opts.utteranceDetection);
  const onsets = opts.callerOnsetsMs ?? utterances.map((u) => u.startMs);
  const dtmf = [...(opts.dtmf ?? [])].sort((a, b) => a.atMs - b.atMs);
  for (const d of dtmf) {
    if (!/^[0-9*#A-D]$/.test(d.digit)) throw new Error(`dtmf digit must be one of 0-9 * # A-D, got ${JSON.stringify(d.digit)}`);
  }

  const accountSid = opts.accountSid ?? sid('AC');
  const callSid = opts.callSid ?? sid('CA');
  const streamSid = opts.streamSid ?? sid('MZ');

  const headers: Record<string, string> = { ...opts.headers };
  if (opts.authToken !== undefined) {
    headers[SIGNATURE_HEADER] = computeSignature(opts.authToken, opts.signUrl ?? defaultSignUrl(opts.url), {});
  }

  const playback = new PlaybackModel(totalFrames * FRAME_SAMPLES);

  return new Promise<SimReport>((resolve, reject) => {
    const ws = new WebSocket(opts.url, {
      headers,
      perMessageDeflate: false,
      handshakeTimeout: opts.connectTimeoutMs ?? 10_000,
    });

    let opened = false;
    let settled = false;
    let t0 = 0;
    let seq = 0;
    let nextFrame = 0;
    let dtmfIdx = 0;
    let timer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    let stopSent = false;
    let stopAtMs = -1;
    let closedBy: 'client' | 'server' = 'server';

    let framesReceived = 0;
    let bytesReceived = 0;
    let clearsReceived = 0;
    let marksReceived = 0;
    let marksEchoed = 0;
    let marksEchoedByClear = 0;
    let messagesAfterStop = 0;
    let dtmfSent = 0;
    let violations = 0;
    const violationMessages: string[] = [];

    const callMs = (): number => (performance.now() - t0) * speed;
    const nowSample = (): number => Math.floor(callMs() * SAMPLES_PER_MS);

    const violation = (msg: string): void => {
      violations++;
      if (violationMessages.length < MAX_VIOLATION_MESSAGES) violationMessages.push(`${callMs().toFixed(0)} ms: ${msg}`);
    };

    const send = (obj: object): void => {
      const text = JSON.stringify(obj);
      opts.onMessage?.('out', callMs(), text);
      if (ws.readyState === WebSocket.OPEN) ws.send(text);
    };
    const nextSeq = (): string => String(++seq);

    const echoMark = (name: string): void => {
      marksEchoed++;
      send({ event: 'mark', sequenceNumber: nextSeq(), streamSid, mark: { name } });
    };

    // Sends everything due by now in call-time order: media frames (with any DTMF due before
    // them) and mark echoes whose audio has finished playing. The schedule is absolute, so a late
    // timer never stretches the call; it only sends a few messages back to back.
    const pump = (): void => {
      const now = callMs();
      for (;;) {
        const frameDue = nextFrame < totalFrames ? (nextFrame + 1) * FRAME_MS : Infinity;
        const markAt = playback.nextMarkAt();
        const markDue = markAt === undefined ? Infinity : markAt / SAMPLES_PER_MS;
        if (markDue <= now && markDue <= frameDue) {
          for (const name of playback.takeDueMarks(markAt!)) echoMark(name);
        } else if (frameDue <= now) {
          while (dtmfIdx < dtmf.length && dtmf[dtmfIdx].atMs <= frameDue) {
            send({ event: 'dtmf', streamSid, sequenceNumber: nextSeq(), dtmf: { track: 'inbound_track', digit: dtmf[dtmfIdx].digit } });
            dtmfIdx++;
            dtmfSent++;
          }
          const payload = Buffer.from(frames.buffer, nextFrame * FRAME_SAMPLES, FRAME_SAMPLES).toString('base64');
          send({
            event: 'media',
            sequenceNumber: nextSeq(),
            streamSid,
            media: { track: 'inbound', chunk: String(nextFrame + 1), timestamp: String(frameDue), payload },
          });
          nextFrame++;
        } else {
          return;
        }
      }
    };

    const finishCall = (): void => {
      if (stopSent) return;
      stopSent = true;
      stopAtMs = totalFrames * FRAME_MS;
      send({ event: 'stop', sequenceNumber: nextSeq(), streamSid, stop: { accountSid, callSid } });
      closedBy = 'client';
      ws.close(1000, 'call ended');
      // ws waits 30 s for the close handshake by default; a stuck server should not stall a run.
      closeTimer = setTimeout(() => ws.terminate(), 2000);
    };

    const tick = (): void => {
      timer = undefined;
      if (stopSent || ws.readyState !== WebSocket.OPEN) return;
      pump();
      if (nextFrame >= totalFrames) finishCall();
      else schedule();
    };

    const schedule = (): void => {
      if (timer) clearTimeout(timer);
      let nextMs = (nextFrame + 1) * FRAME_MS;
      const markAt = playback.nextMarkAt();
      if (markAt !== undefined) nextMs = Math.min(nextMs, markAt / SAMPLES_PER_MS);
      timer = setTimeout(tick, Math.max(0, (nextMs - callMs()) / speed));
    };

    const onServerText = (text: string): void => {
      if (stopSent) {
        messagesAfterStop++;
        return;
      }
      pump();
      const r = parseServerMessage(text);
      if (!r.ok) {
        violation(r.error);
        return;
      }
      const m = r.message;
      if (m.streamSid !== streamSid) {
        violation(`${m.event}: streamSid ${JSON.stringify(m.streamSid)} is not this call's ${JSON.stringify(streamSid)}`);
        return;
      }
      const now = nowSample();
      switch (m.event) {
        case 'media': {
          const codes = Buffer.from(m.media.payload, 'base64');
          framesReceived++;
          bytesReceived += codes.length;
          playback.append(now, new Uint8Array(codes.buffer, codes.byteOffset, codes.length));
          if (playback.buffered(now) > MAX_BUFFER_SAMPLES) violation('more than 10 minutes of audio buffered (Twilio error 31931)');
          break;
        }
        case 'mark':
          marksReceived++;
          if (playback.mark(now, m.mark.name)) echoMark(m.mark.name);
          else schedule();
          break;
        case 'clear':
          clearsReceived++;
          for (const name of playback.clear(now)) {
            marksEchoedByClear++;
            echoMark(name);
          }
          break;
      }
    };

    const buildReport = (code: number, reason: string): SimReport => {
      const endMs = stopAtMs >= 0 ? stopAtMs : Math.min(opened ? callMs() : 0, totalFrames * FRAME_MS);
      const endSample = Math.floor(endMs * SAMPLES_PER_MS);
      const heardMulaw = playback.heard.slice(0, endSample);
      const runs = playback.runs.filter((r) => r.start < endSample).map((r) => ({ ...r, end: Math.min(r.end, endSample) }));
      const { underruns, underrunSamples, responses } = underrunStats(runs, (opts.underrunGapMs ?? 1000) * SAMPLES_PER_MS);
      const ms = (s: number): number => s / SAMPLES_PER_MS;

      const responseLatenciesMs = utterances.map((u, i) => {
        const limit = i + 1 < utterances.length ? utterances[i + 1].startMs : endMs;
        const r = runs.find((x) => ms(x.start) >= u.endMs && ms(x.start) < limit);
        return r ? ms(r.start) - u.endMs : null;
      });

      const bargeIns: BargeIn[] = [];
      for (const onset of onsets) {
        const at = onset * SAMPLES_PER_MS;
        const resp = responses.find((r) => r.start <= at && at < r.end);
        if (!resp) continue;
        // A response cut short by clear ends exactly when the clear arrived.
        const clearAtMs = resp.endedByClear ? ms(resp.end) : null;
        bargeIns.push({ onsetMs: onset, clearAtMs, latencyMs: clearAtMs === null ? null : clearAtMs - onset });
      }

      let playedSamples = 0;
      for (const r of runs) playedSamples += r.end - r.start;

      return {
        accountSid,
        callSid,
        streamSid,
        callDurationMs: endMs,
        framesSent: nextFrame,
        dtmfSent,
        framesReceived,
        bytesReceived,
        audioReceivedMs: ms(bytesReceived),
        audioPlayedMs: ms(playedSamples),
        firstAudioMs: runs.length > 0 ? ms(runs[0].start) : null,
        callerUtterances: utterances,
        responseLatencyMs: responseLatenciesMs[0] ?? null,
        responseLatenciesMs,
        bargeIns,
        bargeInLatencyMs: bargeIns.find((b) => b.latencyMs !== null)?.latencyMs ?? null,
        clearsReceived,
        underruns,
        underrunMs: ms(underrunSamples),
        playback: runs.map((r) => ({ startMs: ms(r.start), endMs: ms(r.end), endedByClear: r.endedByClear })),
        marksReceived,
        marksEchoed,
        marksEchoedByClear,
        marksPending: marksReceived - marksEchoed,
        violations,
        violationMessages,
        messagesAfterStop,
        closeCode: code,
        closeReason: reason,
        closedBy,
        heard: decodeMulaw(heardMulaw),
        heardMulaw,
      };
    };

    ws.on('unexpected-response', (req, res) => {
      settled = true;
      const status = res.statusCode ?? 0;
      res.resume();
      req.destroy();
      reject(new SimulateConnectError(`${opts.url}: server answered the WebSocket upgrade with HTTP ${status}`, status));
    });

    ws.on('error', (err) => {
      if (!opened && !settled) {
        settled = true;
        reject(new SimulateConnectError(`${opts.url}: ${err.message}`));
      } else if (opened) {
        violation(`socket error: ${err.message}`);
      }
    });

    ws.on('open', () => {
      opened = true;
      t0 = performance.now(); // connected and start go out together: both at call time 0
      send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
      send({
        event: 'start',
        sequenceNumber: nextSeq(),
        streamSid,
        start: {
          accountSid,
          streamSid,
          callSid,
          tracks: ['inbound'],
          customParameters: { ...opts.parameters },
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        },
      });
      schedule();
    });

    ws.on('message', (data, isBinary) => {
      if (!opened) return;
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      const text = buf.toString('utf8');
      opts.onMessage?.('in', callMs(), isBinary ? `<binary ${text.length} bytes>` : text);
      if (isBinary) {
        if (!stopSent) violation('binary frame (Twilio expects JSON text frames)');
        return;
      }
      onServerText(text);
    });

    ws.on('close', (code, reasonBuf) => {
      if (timer) clearTimeout(timer);
      if (closeTimer) clearTimeout(closeTimer);
      if (!opened) {
        if (!settled) {
          settled = true;
          reject(new SimulateConnectError(`${opts.url}: connection closed before the upgrade completed (code ${code})`));
        }
        return;
      }
      settled = true;
      resolve(buildReport(code, reasonBuf.toString('utf8')));
    });
  });
}
