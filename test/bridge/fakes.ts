// A Call with both sockets faked and time driven by hand: what it sent each way, how it closed,
// what it logged. No sockets, no timers that matter (the start timeout is set far away).
import { Writable } from 'node:stream';
import pino from 'pino';
import { Call, type CallOptions, type CarrierSocket } from '../../src/bridge/call.js';
import type { FaultMetrics } from '../../src/bridge/faults.js';
import type { ModelLink } from '../../src/model/client.js';
import type { ServerEvent } from '../../src/model/protocol.js';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export function logSink(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  // pino writes synchronously to a plain stream: lines are there when the call returns.
  return { logger: pino({ level: 'debug', base: undefined }, stream), lines };
}

export class FakeCarrier implements CarrierSocket {
  readonly sent: string[] = [];
  readonly closes: { code: number; reason: string }[] = [];
  buffered = 0;
  send(m: Uint8Array | string): void {
    this.sent.push(typeof m === 'string' ? m : Buffer.from(m).toString('utf8'));
  }
  close(code: number, reason: string): void {
    this.closes.push({ code, reason });
  }
  batch(fn: () => void): void {
    fn();
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  json(): { event: string; media?: { payload: string }; mark?: { name: string } }[] {
    return this.sent.map((s) => JSON.parse(s));
  }
  /** The mu-law bytes of every media message sent, in order. */
  mediaBytes(): Buffer {
    return Buffer.concat(this.json().filter((m) => m.event === 'media').map((m) => Buffer.from(m.media!.payload, 'base64')));
  }
}

export class FakeModel implements ModelLink {
  readonly ready: Promise<void>;
  resolveReady!: () => void;
  rejectReady!: (e: Error) => void;
  /** Raw appends (decoded text) and control events, in order. */
  readonly sentRaw: string[] = [];
  readonly sentEvents: Record<string, unknown>[] = [];
  readonly closes: { code?: number; reason?: string }[] = [];
  buffered = 0;
  onAudioDelta: (msg: Uint8Array) => void = () => {};
  onEvent: (ev: ServerEvent) => void = () => {};
  onClose: (code: number, reason: string) => void = () => {};

  constructor() {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
  }

  get bufferedAmount(): number {
    return this.buffered;
  }
  sendRaw(bytes: Uint8Array): void {
    this.sentRaw.push(Buffer.from(bytes).toString('utf8'));
  }
  send(event: object): void {
    this.sentEvents.push(event as Record<string, unknown>);
  }
  close(code?: number, reason?: string): void {
    this.closes.push({ code, reason });
  }

  /** The audio bytes of every append sent (base64-decoded), in order. */
  appendedAudio(): Buffer {
    return Buffer.concat(this.sentRaw.map((s) => Buffer.from(JSON.parse(s).audio, 'base64')));
  }
  events(type: string): Record<string, unknown>[] {
    return this.sentEvents.filter((e) => e.type === type);
  }

  delta(itemId: string, audio: Uint8Array, responseId = 'resp_1'): void {
    this.onAudioDelta(Buffer.from(JSON.stringify({
      type: 'response.output_audio.delta', event_id: 'ev', response_id: responseId, item_id: itemId,
      output_index: 0, content_index: 0, delta: Buffer.from(audio).toString('base64'),
    })));
  }
  event(ev: Record<string, unknown>): void {
    this.onEvent(ev as unknown as ServerEvent);
  }
}

export const BASE_OPTIONS: CallOptions = {
  format: 'pcmu',
  playbackLeadMs: 80,
  markIntervalMs: 100,
  echoTailMs: 400,
  bargeIn: true,
  queueSeconds: 2,
  startTimeoutMs: 600_000,
  vad: { thresholdDb: 8, minSpeechMs: 20, hangoverMs: 300, botThresholdDb: 8, botMinSpeechMs: 20 },
};

export interface CountingFaults extends FaultMetrics {
  counts: Record<string, number>;
}

export function countingFaults(): CountingFaults {
  const counts: Record<string, number> = {};
  const add = (k: string, n = 1) => { counts[k] = (counts[k] ?? 0) + n; };
  return {
    counts,
    callerAudioDropped: (s) => add('callerAudioDroppedS', s),
    botAudioDropped: (s) => add('botAudioDroppedS', s),
    carrierPaused: () => add('carrierPaused'),
    streamClosed: (r) => add(`streamClosed:${r}`),
    modelErrorHandled: (a) => add(`modelError:${a}`),
    modelResponse: (s) => add(`response:${s}`),
  };
}

export interface Rig {
  call: Call;
  carrier: FakeCarrier;
  model: FakeModel;
  lines: LogLine[];
  faults: CountingFaults;
  /** The hand-driven clock, ms. */
  clock: { t: number };
  ends: Call[];
}

export function makeCall(opts: Partial<CallOptions> = {}): Rig {
  const carrier = new FakeCarrier();
  const model = new FakeModel();
  const { logger, lines } = logSink();
  const clock = { t: 1000 };
  const faults = countingFaults();
  const ends: Call[] = [];
  const call = new Call(carrier, model, { ...BASE_OPTIONS, faults, clock: () => clock.t, ...opts }, logger, (c) => ends.push(c));
  return { call, carrier, model, lines, faults, clock, ends };
}

/** Resolves the model's ready and lets the Call's `then` run. */
export async function ready(r: Rig): Promise<void> {
  r.model.resolveReady();
  await r.model.ready;
  await Promise.resolve();
}

// ---- Twilio messages ------------------------------------------------------------------------------

export const STREAM_SID = 'MZfake';
export const CALL_SID = 'CAfake';

export function startMsg(sid = STREAM_SID, callSid = CALL_SID): string {
  return JSON.stringify({
    event: 'start', sequenceNumber: '1', streamSid: sid,
    start: {
      accountSid: 'ACx', streamSid: sid, callSid, tracks: ['inbound'], customParameters: {},
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
  });
}

export function mediaMsg(n: number, codes: Uint8Array, sid = STREAM_SID): string {
  return JSON.stringify({
    event: 'media', sequenceNumber: String(n + 1), streamSid: sid,
    media: { track: 'inbound', chunk: String(n), timestamp: String(n * 20), payload: Buffer.from(codes).toString('base64') },
  });
}

export function stopMsg(sid = STREAM_SID): string {
  return JSON.stringify({ event: 'stop', sequenceNumber: '999', streamSid: sid, stop: { accountSid: 'ACx', callSid: CALL_SID } });
}

export function text(r: Rig, s: string): void {
  r.call.onCarrierMessage(Buffer.from(s, 'utf8'));
}

export function frame(code: number, bytes = 160): Uint8Array {
  return new Uint8Array(bytes).fill(code);
}
