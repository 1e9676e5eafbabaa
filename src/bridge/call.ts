// One call: Twilio stream <-> model session. Owns the call's DSP state, the outbound pacer and
// the barge-in decision. Everything per frame goes through CallDsp (one WASM call each way);
// this file only routes bytes and keeps the bookkeeping of what the caller has heard.
import type { Logger } from 'pino';
import {
  CallDsp,
  DELTA_DROPPED,
  DELTA_NEW_ITEM,
  ERR_BASE64,
  ERR_NEEDS_PARSE,
  ERR_NOT_MEDIA,
  ERR_TOO_LARGE,
  VAD_ONSET,
  type ModelAudioFormat,
  type VadParams,
} from '../dsp/call.js';
import { badMessageKind, NOOP_METRICS, type BridgeMetrics } from '../metrics.js';
import type { ModelLink } from '../model/client.js';
import type { ServerEvent } from '../model/protocol.js';
import { parseControlMessage, serializeClear, serializeMark, type TwilioStart } from '../twilio/protocol.js';
import { DEFAULT_ECHO_MARGIN_DB, EchoGate } from './echo.js';
import { NOOP_FAULT_METRICS, type FaultMetrics } from './faults.js';
import { modelErrorPolicy } from './model-errors.js';
import { Playback } from './playback.js';

/** The carrier side of a call as the core sees it (a Twilio WebSocket here). */
export interface CarrierSocket {
  /** Sends one text message; bytes are copied before return. */
  send(message: Uint8Array | string): void;
  /** Closes the stream so the carrier runs whatever follows (TwiML after </Connect>). */
  close(code: number, reason: string): void;
  /** Runs fn with sends batched into one write (uWS cork) when called outside a socket handler. */
  batch(fn: () => void): void;
  /** Bytes queued in the socket's send buffer, not yet taken by the kernel (default 0). */
  bufferedAmount?(): number;
}

export interface CallOptions {
  format: ModelAudioFormat;
  playbackLeadMs: number;
  markIntervalMs: number;
  /** How long after bot audio played its echo may still come back (the echo gate's window). */
  echoTailMs: number;
  /** Echo return loss assumed minus a safety margin, dB (default DEFAULT_ECHO_MARGIN_DB). */
  echoMarginDb?: number;
  bargeIn: boolean;
  vad: VadParams;
  queueSeconds: number;
  startTimeoutMs: number;
  greeting?: string;
  /** Default NOOP_METRICS. */
  metrics?: BridgeMetrics;
  /** Default NOOP_FAULT_METRICS. */
  faults?: FaultMetrics;
  /**
   * MAX_MESSAGES_PER_S: inbound messages per second a stream may sustain (a token bucket holding
   * FLOOD_BURST_SECONDS of it); over it the stream is closed with 1008. 0 or unset: no cap.
   */
  maxMessagesPerSecond?: number;
  /**
   * MODEL_MAX_BUFFERED_BYTES: while the model socket's send buffer holds more than this, caller
   * audio is dropped (counted) instead of queued without bound. Also bounds the appends kept
   * while the session is not ready yet (oldest dropped). Default DEFAULT_MODEL_MAX_BUFFERED_BYTES.
   */
  modelMaxBufferedBytes?: number;
  /**
   * OUTBOUND_PAUSE_BYTES: while the Twilio socket's send buffer holds more than this, no bot audio
   * is sent; it waits in the outbound queue, which drops its oldest audio when full. Default
   * DEFAULT_OUTBOUND_PAUSE_BYTES.
   */
  outboundPauseBytes?: number;
  /** Signatures are not checked (ALLOW_UNSIGNED with a real model): warn once per call. */
  warnUnsigned?: boolean;
  /** ms clock (default performance.now); tests drive time with it. */
  clock?: () => number;
}

/** A flood cap bucket holds this many seconds of MAX_MESSAGES_PER_S, so a stall's backlog passes. */
export const FLOOD_BURST_SECONDS = 2;
/** Close code and reason for a stream over MAX_MESSAGES_PER_S (1008: policy violation). */
export const FLOOD_CLOSE_CODE = 1008;
export const FLOOD_CLOSE_REASON = 'message rate exceeded';
/** ~16 s of pcm24k caller audio as base64 appends (64 kB/s). */
export const DEFAULT_MODEL_MAX_BUFFERED_BYTES = 1 << 20;
/** ~3 s of outbound media messages (~300 bytes per 20 ms). */
export const DEFAULT_OUTBOUND_PAUSE_BYTES = 64 * 1024;

export type CallOutcome =
  | 'completed' // Twilio sent stop
  | 'hangup' // the Twilio socket closed without stop
  | 'model_failed' // model session never became ready, or dropped mid-call
  | 'no_start' // Twilio never sent start
  | 'bad_stream' // the stream's format is not what we bridge, a message over MAX_MESSAGE_BYTES, or a bridge bug
  | 'flood' // more than MAX_MESSAGES_PER_S inbound messages, sustained
  | 'model_error' // the model reported an error that ends its session (bridge/model-errors.ts)
  | 'shutdown';

export interface CallStats {
  framesIn: number;
  framesOut: number;
  marksSent: number;
  marksPlayed: number;
  marksCleared: number;
  bargeIns: number;
  /** Inbound messages that were not valid (bad JSON, bad base64, unknown events...). */
  badMessages: number;
  gapMs: number;
  /** ms from call start (socket open) to first bot audio sent. */
  firstAudioMs: number | null;
  truncations: { itemId: string; audioEndMs: number; sentMs: number }[];
  /** Caller audio not sent to the model because its socket was backed up (or never got ready in time). */
  callerAudioDroppedMs: number;
  /** Bot audio dropped from the full outbound queue (oldest first). */
  botAudioDroppedMs: number;
  /** Times outbound pacing paused on a backed-up Twilio socket. */
  outboundPauses: number;
  /** Model error events that did not end the call (ignored ones not counted). */
  modelErrors: number;
  /** Responses that ended with status failed. */
  failedResponses: number;
}

/** `{"type":"input_audio_buffer.append","audio":"` + `"}`: the append message around its base64. */
const APPEND_OVERHEAD = 47;

export class Call {
  readonly dsp: CallDsp;
  readonly stats: CallStats = {
    framesIn: 0, framesOut: 0, marksSent: 0, marksPlayed: 0, marksCleared: 0, bargeIns: 0,
    badMessages: 0, gapMs: 0, firstAudioMs: null, truncations: [],
    callerAudioDroppedMs: 0, botAudioDroppedMs: 0, outboundPauses: 0, modelErrors: 0, failedResponses: 0,
  };
  callSid = '';
  streamSid = '';
  customParameters: Record<string, string> = {};
  outcome: CallOutcome | undefined;

  private readonly now: () => number;
  private readonly opened: number;
  private readonly playback: Playback;
  private readonly echo: EchoGate;
  private modelReady = false;
  /** Appends made before the model session was ready: sent in order once it is. */
  private pendingAppends: Buffer[] = [];
  private startTimer: NodeJS.Timeout | undefined;
  /** The response being generated (response.created .. response.done) and its audio item. */
  private activeResponse: string | undefined;
  private activeItem: string | undefined;
  private cancelledResponse: string | undefined;
  /** Items of cancelled responses whose audio must never play (bounded). */
  private readonly cancelledItems: string[] = [];
  private warnedQueueFull = false;
  /** Kinds of bad message already logged: each is logged once, then only every 1024th message. */
  private readonly badKinds = new Set<string>();
  private readonly log: Logger;
  private readonly metrics: BridgeMetrics;
  private readonly faults: FaultMetrics;
  /** Flood cap: tokens left (messages) and when they were last refilled. */
  private floodTokens: number;
  private floodAt: number;
  private readonly floodRate: number;
  private readonly modelMaxBuffered: number;
  private readonly outboundPauseBytes: number;
  private pendingBytes = 0;
  /** Caller audio is being dropped on a backed-up model socket (one warning per episode). */
  private modelBackedUp = false;
  private modelBackedUpMs = 0;
  private modelBackedUpEpisodes = 0;
  /** Bot audio pacing is paused on a backed-up Twilio socket. */
  private outboundPaused = false;
  private botDropWarned = false;
  private endCount = 0;
  /** The Twilio socket is already closed: nothing to close on end(). */
  private carrierGone = false;
  /** When the caller stopped talking (the model is due to answer), for first-audio latency; -1: none. */
  private answerDueAt = -1;

  constructor(
    private readonly carrier: CarrierSocket,
    private readonly model: ModelLink,
    private readonly opts: CallOptions,
    log: Logger,
    private readonly onEnd: (call: Call) => void,
  ) {
    this.log = log;
    this.now = opts.clock ?? (() => performance.now());
    this.opened = this.now();
    this.metrics = opts.metrics ?? NOOP_METRICS;
    this.faults = opts.faults ?? NOOP_FAULT_METRICS;
    this.floodRate = opts.maxMessagesPerSecond ?? 0;
    this.floodTokens = this.floodRate * FLOOD_BURST_SECONDS;
    this.floodAt = this.opened;
    this.modelMaxBuffered = opts.modelMaxBufferedBytes ?? DEFAULT_MODEL_MAX_BUFFERED_BYTES;
    this.outboundPauseBytes = opts.outboundPauseBytes ?? DEFAULT_OUTBOUND_PAUSE_BYTES;
    this.dsp = new CallDsp({ format: opts.format, queueSeconds: opts.queueSeconds, vad: opts.vad });
    this.playback = new Playback(opts.markIntervalMs);
    this.echo = new EchoGate({
      windowMs: opts.echoTailMs,
      marginDb: opts.echoMarginDb ?? DEFAULT_ECHO_MARGIN_DB,
      thresholdDb: opts.vad.thresholdDb,
      minSpeechMs: opts.vad.minSpeechMs,
      hangoverMs: opts.vad.hangoverMs,
      botMinSpeechMs: opts.vad.botMinSpeechMs,
    }, this.dsp);
    model.onAudioDelta = (msg) => this.onModelAudio(msg);
    model.onEvent = (ev) => this.onModelEvent(ev);
    model.onClose = (code, reason) => this.onModelClose(code, reason);
    model.ready.then(() => this.safely(() => this.onModelReady()), () => {});
    this.startTimer = setTimeout(() => this.safely(() => {
      if (!this.streamSid) {
        this.log.error({ timeoutMs: opts.startTimeoutMs }, 'twilio never sent start; ending the stream');
        this.end('no_start', 1008, 'no start message');
      }
    }), opts.startTimeoutMs);
  }

  /**
   * Runs a callback of this call's own timers and promises: a bug there ends this call, never
   * the process (an uncaught exception or unhandled rejection would end every call).
   */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ err: (e as Error).stack }, 'call handler threw; ending call');
      try {
        this.end('bad_stream', 1011, 'internal error');
      } catch {
        // nothing more to do
      }
    }
  }

  get ended(): boolean { return this.outcome !== undefined; }

  // ---- Twilio -> model ------------------------------------------------------------------------

  /** One text message from the Twilio socket, as raw bytes. */
  onCarrierMessage(bytes: Uint8Array): void {
    if (this.ended) return;
    const t = this.now();
    if (!this.admit(t)) return;
    const t0 = this.metrics.dspStart();
    const code = this.dsp.inboundMessage(bytes, this.echo.beforeInbound(t));
    this.metrics.dspEnd('inbound', t0);
    if (code >= 0) {
      this.onInboundAudio(code, t);
      return;
    }
    if (code !== ERR_NOT_MEDIA && code !== ERR_NEEDS_PARSE) {
      // ERR_TOO_LARGE: a payload over the kernel's frame limit, or a message too big to scan at all.
      this.badMessage(code === ERR_BASE64 ? 'media payload is not valid base64'
        : bytes.length > 64 * 1024 ? `message too large to scan: ${bytes.length} bytes` : 'media payload too large');
      return;
    }
    this.onControlText(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), t);
  }

  /**
   * The flood cap: a token bucket of MAX_MESSAGES_PER_S refilled continuously, holding
   * FLOOD_BURST_SECONDS of it. Twilio sends ~50 media messages a second plus a mark echo per
   * MARK_INTERVAL_MS; a stream sustaining several times that is not a phone call, and every
   * message costs this thread (shared by every call on it) a WASM call or a JSON.parse.
   */
  private admit(t: number): boolean {
    if (this.floodRate <= 0) return true;
    const cap = this.floodRate * FLOOD_BURST_SECONDS;
    this.floodTokens = Math.min(cap, this.floodTokens + ((t - this.floodAt) / 1000) * this.floodRate);
    this.floodAt = t;
    if (this.floodTokens >= 1) {
      this.floodTokens -= 1;
      return true;
    }
    this.faults.streamClosed('flood');
    this.log.error({ maxMessagesPerSecond: this.floodRate, framesIn: this.stats.framesIn, badMessages: this.stats.badMessages },
      'inbound message flood: closing the stream (1008)');
    this.end('flood', FLOOD_CLOSE_CODE, FLOOD_CLOSE_REASON);
    return false;
  }

  private onInboundAudio(flags: number, t: number): void {
    this.stats.framesIn++;
    // Twilio always starts with `start`; audio before it is kept (the session is open) but the
    // stream is not identified yet, so it counts as a protocol anomaly.
    if (!this.streamSid) this.badMessage('media before start: audio kept, stream not yet identified');
    const append = this.dsp.appendMessage();
    if (this.modelReady) this.sendAppend(append, t);
    else this.queueAppend(append);
    if ((flags & VAD_ONSET) !== 0 && this.opts.bargeIn && this.botTurn(t)) this.bargeIn(t, 'local_vad');
  }

  /** ms of caller audio in an append message (its base64 between a fixed prefix and `"}`). */
  private appendMs(append: Uint8Array): number {
    const len = append.length;
    const pad = (append[len - 3] === 0x3d ? 1 : 0) + (append[len - 4] === 0x3d ? 1 : 0);
    const bytes = ((len - APPEND_OVERHEAD) * 3) / 4 - pad;
    return Math.max(0, this.dsp.format === 'pcmu' ? bytes / 8 : bytes / 48);
  }

  /**
   * Model-side backpressure: ws queues whatever it cannot write at once, without bound. Past
   * MODEL_MAX_BUFFERED_BYTES the model is seconds behind the caller; queueing more only makes
   * every later answer later, so the new audio is dropped (the bytes already queued cannot be
   * taken back) and the loss is counted and logged, once per episode.
   */
  private sendAppend(append: Uint8Array, t: number): void {
    const buffered = this.model.bufferedAmount;
    if (buffered > this.modelMaxBuffered) {
      const ms = this.appendMs(append);
      this.stats.callerAudioDroppedMs += ms;
      this.modelBackedUpMs += ms;
      this.faults.callerAudioDropped(ms / 1000);
      if (!this.modelBackedUp) {
        this.modelBackedUp = true;
        this.modelBackedUpMs = ms;
        // Episodes logged 1st, 2nd, 4th, 8th...: a socket hovering at the limit must not flood the log.
        const n = ++this.modelBackedUpEpisodes;
        if ((n & (n - 1)) === 0) {
          this.log.warn({ bufferedBytes: buffered, limitBytes: this.modelMaxBuffered, episodes: n },
            'model socket backed up: dropping caller audio until it drains');
        }
      }
      return;
    }
    if (this.modelBackedUp) {
      this.modelBackedUp = false;
      const n = this.modelBackedUpEpisodes;
      if ((n & (n - 1)) === 0) {
        this.log.warn({ droppedMs: Math.round(this.modelBackedUpMs), atMs: Math.round(t - this.opened), episodes: n },
          'model socket drained: caller audio flows again');
      }
    }
    this.model.sendRaw(append);
  }

  /** Before the session is ready: kept in order, bounded like the socket buffer (oldest dropped). */
  private queueAppend(append: Uint8Array): void {
    this.pendingAppends.push(Buffer.from(append));
    this.pendingBytes += append.length;
    let dropped = 0;
    while (this.pendingBytes > this.modelMaxBuffered && this.pendingAppends.length > 1) {
      const old = this.pendingAppends.shift()!;
      this.pendingBytes -= old.length;
      dropped += this.appendMs(old);
    }
    if (dropped > 0) {
      if (this.stats.callerAudioDroppedMs === 0) {
        this.log.warn({ limitBytes: this.modelMaxBuffered }, 'model session not ready and its queue is full: dropping the oldest caller audio');
      }
      this.stats.callerAudioDroppedMs += dropped;
      this.faults.callerAudioDropped(dropped / 1000);
    }
  }

  private onControlText(text: string, t: number): void {
    const parsed = parseControlMessage(text);
    if (!parsed.ok) {
      this.badMessage(parsed.error);
      return;
    }
    const msg = parsed.message;
    switch (msg.event) {
      case 'connected':
        return;
      case 'start':
        return this.onStart(msg);
      case 'media': {
        // The scan declined it (escapes, reordered exotic shapes): same kernel, parsed fields.
        const code = this.dsp.inboundPayload(msg.media.payload, Number(msg.media.timestamp), this.echo.beforeInbound(t));
        if (code >= 0) this.onInboundAudio(code, t);
        else this.badMessage(code === ERR_BASE64 ? 'media payload is not valid base64' : 'media payload too large');
        return;
      }
      case 'mark':
        return this.onMark(msg.mark.name);
      case 'dtmf':
        this.log.info({ digit: msg.dtmf.digit }, 'dtmf');
        return;
      case 'stop':
        this.log.info('twilio stop');
        this.end('completed', 1000, 'stop');
        return;
    }
  }

  private onStart(msg: TwilioStart): void {
    if (this.streamSid) {
      this.badMessage('second start on the same stream ignored');
      return;
    }
    const f = msg.start.mediaFormat;
    this.callSid = msg.start.callSid;
    this.streamSid = msg.streamSid || msg.start.streamSid;
    this.customParameters = msg.start.customParameters;
    clearTimeout(this.startTimer);
    this.log.setBindings({ callSid: this.callSid, streamSid: this.streamSid });
    if (this.opts.warnUnsigned) {
      this.log.warn('INSECURE: this stream was accepted without a Twilio signature check (ALLOW_UNSIGNED, no TWILIO_AUTH_TOKEN); anyone who can reach this server can open model sessions on your key');
    }
    if (f.encoding !== 'audio/x-mulaw' || f.sampleRate !== 8000 || f.channels !== 1) {
      this.log.error({ mediaFormat: f }, 'unsupported stream media format');
      this.end('bad_stream', 1003, 'unsupported media format');
      return;
    }
    if (!this.dsp.setStreamSid(this.streamSid)) {
      this.end('bad_stream', 1008, 'streamSid too long');
      return;
    }
    this.log.info({ customParameters: this.customParameters }, 'stream started');
  }

  /** Twilio only sends text frames; a binary one is counted and dropped. */
  rejectBinary(): void {
    if (this.ended || !this.admit(this.now())) return;
    this.badMessage('binary frame');
  }

  /**
   * The Twilio socket closed under us. uWebSockets.js itself drops the connection (no close
   * frame: the peer sees 1006) on a protocol violation and reports why here, as 1006 and:
   *   "Received too big message"  a message over maxPayloadLength (MAX_MESSAGE_BYTES)
   *   "Received invalid UTF-8"    a text frame that is not UTF-8
   * Both are counted as bad messages and end the call as 'bad_stream'. Anything else (a close
   * frame, a reset, "WebSocket timed out from inactivity" after WS_IDLE_TIMEOUT_S) is a hang-up.
   */
  carrierClosed(code: number, reason: string): void {
    if (this.ended) return;
    this.carrierGone = true;
    const tooBig = /too big/i.test(reason);
    if (tooBig || /invalid UTF-8/i.test(reason)) {
      this.badMessage(tooBig
        ? 'message over MAX_MESSAGE_BYTES: too large, connection dropped by the server'
        : 'text frame not valid UTF-8: connection dropped by the server');
      this.faults.streamClosed(tooBig ? 'too_large' : 'invalid_utf8');
      this.log.error({ code, reason }, tooBig
        ? 'twilio message over MAX_MESSAGE_BYTES: the stream was dropped'
        : 'twilio text frame not valid UTF-8: the stream was dropped');
      this.end('bad_stream', code, reason);
      return;
    }
    if (/timed out/i.test(reason)) this.log.warn({ code, reason }, 'twilio stream silent for WS_IDLE_TIMEOUT_S: dropped');
    this.end('hangup');
  }

  private badMessage(why: string): void {
    this.stats.badMessages++;
    this.metrics.badMessage(badMessageKind(why));
    // One line per kind is enough to diagnose; a flood must not flood the log. The kind is the
    // text before the first ':' (parse errors name the field there), and only a few are kept.
    const kind = why.split(':', 1)[0];
    let log = (this.stats.badMessages & 1023) === 0;
    if (!this.badKinds.has(kind) && this.badKinds.size < 32) {
      this.badKinds.add(kind);
      log = true;
    }
    if (log) this.log.warn({ count: this.stats.badMessages }, `bad twilio message: ${why}`);
  }

  // ---- model -> Twilio ------------------------------------------------------------------------

  private onModelReady(): void {
    if (this.ended) return;
    this.modelReady = true;
    this.log.info({ afterMs: Math.round(this.now() - this.opened), buffered: this.pendingAppends.length }, 'model session ready');
    for (const b of this.pendingAppends) this.model.sendRaw(b);
    this.pendingAppends = [];
    this.pendingBytes = 0;
    if (this.opts.greeting) {
      this.model.send({
        type: 'response.create',
        response: { instructions: `Greet the caller by saying: ${this.opts.greeting}` },
      });
    }
  }

  private onModelAudio(msg: Uint8Array): void {
    if (this.ended) return;
    this.makeRoom(msg.length);
    const t0 = this.metrics.dspStart();
    let r = this.dsp.outboundMessage(msg);
    this.metrics.dspEnd('outbound', t0);
    if (r === ERR_NEEDS_PARSE || r === ERR_TOO_LARGE) r = this.outboundSlowPath(msg);
    if (r === DELTA_DROPPED) return;
    if (r < 0) {
      this.log.warn({ code: r }, 'model audio delta rejected');
      return;
    }
    if ((r & DELTA_NEW_ITEM) !== 0) {
      const itemId = this.dsp.currentItemId();
      if (this.cancelledItems.includes(itemId) || this.ofCancelledResponse(msg)) {
        // The first audio of a response cancelled before it was heard: drop it and the rest.
        this.cancelItem(itemId);
        this.dsp.dropCurrentItem();
        this.segments.length = 0;
        return;
      }
      this.queuingItem = itemId;
      if (this.answerDueAt >= 0) {
        this.metrics.modelFirstAudio((this.now() - this.answerDueAt) / 1000);
        this.answerDueAt = -1;
      }
    }
    this.queued(this.queuingItem, r & ~DELTA_NEW_ITEM);
    if (this.dsp.queueSpace() === 0 && !this.warnedQueueFull) {
      // Only a single delta bigger than the whole queue gets here (see makeRoom).
      this.warnedQueueFull = true;
      this.log.warn({ queueSeconds: this.opts.queueSeconds }, 'outbound queue full: bot audio may have been dropped (raise QUEUE_SECONDS)');
    }
    this.tick(this.now());
  }

  /**
   * The outbound queue never refuses new bot audio: before a delta of `msgLen` message bytes is
   * queued, room is made for the most audio it can carry. Queued audio is first handed on to
   * Twilio (as pump does for a long answer); only what Twilio cannot take now (its socket backed
   * up, or no streamSid yet) is dropped, oldest first: it is what the caller would hear next,
   * and playing it late would put every later word further behind. Counted and warned.
   */
  private makeRoom(msgLen: number): void {
    // Upper bound of the mu-law bytes a delta of this size decodes to: base64 -> bytes, then
    // PCM16 24 kHz -> 8 kHz mu-law is 6 bytes in per byte out (+1 for a carried sample).
    const bytes = Math.ceil((msgLen * 3) / 4);
    const need = this.dsp.format === 'pcmu' ? bytes : Math.ceil(bytes / 6) + 1;
    let space = this.dsp.queueSpace();
    if (space >= need || this.dsp.freed) return;
    if (this.streamSid && !this.carrierBackedUp()) {
      this.pumpAt = this.now();
      this.handOver = need - space;
      this.carrier.batch(this.pumpBatched);
      this.handOver = 0;
      space = this.dsp.queueSpace();
      if (space >= need) return;
    }
    const drop = Math.min(need - space, this.dsp.queuedBytes());
    if (drop <= 0) return;
    const dropped = this.dsp.dropOldest(drop);
    this.unqueued(dropped);
    const ms = dropped / 8;
    this.stats.botAudioDroppedMs += ms;
    this.faults.botAudioDropped(ms / 1000);
    if (!this.botDropWarned) {
      this.botDropWarned = true;
      this.log.warn({ droppedMs: ms, queueSeconds: this.opts.queueSeconds, outboundPaused: this.outboundPaused },
        'outbound queue full: dropping the oldest bot audio (Twilio socket backed up?)');
    }
  }

  /**
   * A new item's first delta names a response already cancelled: its output_item.added never
   * came (or not yet). Read once per item, and only while a cancelled response is known.
   */
  private ofCancelledResponse(msg: Uint8Array): boolean {
    if (this.cancelledResponse === undefined) return false;
    try {
      const ev = JSON.parse(Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength).toString('utf8')) as { response_id?: unknown };
      return ev.response_id === this.cancelledResponse;
    } catch {
      return false;
    }
  }

  private outboundSlowPath(msg: Uint8Array): number {
    let ev: { item_id?: unknown; delta?: unknown; response_id?: unknown };
    try {
      ev = JSON.parse(Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength).toString('utf8'));
    } catch {
      return -1;
    }
    if (typeof ev.delta !== 'string') return -1;
    const itemId = typeof ev.item_id === 'string' ? ev.item_id : this.queuingItem;
    if (itemId === this.playback.droppedItemId || this.cancelledItems.includes(itemId)) return DELTA_DROPPED;
    if (this.cancelledResponse !== undefined && ev.response_id === this.cancelledResponse) {
      this.cancelItem(itemId);
      return DELTA_DROPPED;
    }
    const r = this.dsp.outboundAudio(ev.delta);
    // (The fast path's own item stays what it was: the next fast delta of another item is new.)
    if (r >= 0) this.queuingItem = itemId;
    return r;
  }

  private onModelEvent(ev: ServerEvent): void {
    if (this.ended) return;
    switch (ev.type) {
      case 'input_audio_buffer.speech_started': {
        // Fallback: the model heard speech our VAD missed while the bot was audible. Not while
        // the bot's own echo could be what it heard: the model cannot tell, the echo gate can.
        const t = this.now();
        if (!this.opts.bargeIn || !this.botTurn(t)) return;
        this.echo.beforeInbound(t);
        if (this.echo.lastEchoPossible) {
          this.log.debug('model speech_started while bot echo is possible: not a barge-in');
          return;
        }
        this.bargeIn(t, 'model_vad');
        return;
      }
      case 'input_audio_buffer.speech_stopped':
        this.answerDueAt = this.now();
        return;
      case 'response.output_audio.done':
        this.playback.audioDone = true;
        this.tick(this.now());
        return;
      case 'response.created':
        this.playback.audioDone = false;
        this.activeResponse = ev.response?.id ?? '?';
        this.activeItem = undefined;
        return;
      case 'response.output_item.added':
        if (ev.response_id === this.activeResponse && ev.item?.id) this.activeItem = ev.item.id;
        if (typeof ev.response_id === 'string' && typeof ev.item?.id === 'string') this.noteItem(ev.response_id, ev.item.id);
        // An item of a response already cancelled (its audio never started): never play it.
        if (ev.response_id !== undefined && ev.response_id === this.cancelledResponse && ev.item?.id) this.cancelItem(ev.item.id);
        return;
      case 'response.done': {
        const status = ev.response?.status ?? 'other';
        this.faults.modelResponse(status);
        if (status === 'failed' || status === 'incomplete') {
          // The turn went unanswered (or half answered); the session lives: the call goes on and
          // the caller's next turn gets a new response.
          if (status === 'failed') this.stats.failedResponses++;
          const details = ev.response?.status_details as { error?: { code?: unknown; message?: unknown }; reason?: unknown } | null | undefined;
          this.log.warn({ responseId: ev.response?.id, status, code: details?.error?.code, reason: details?.reason, message: details?.error?.message },
            `model response ${status}; the call goes on`);
        }
        if (ev.response?.id === this.activeResponse || ev.response?.id === undefined) {
          this.activeResponse = undefined;
          // What was queued of it plays out, partial last frame included.
          this.playback.audioDone = true;
          this.tick(this.now());
        }
        return;
      }
      case 'error':
        this.onModelError(ev.error);
        return;
      default:
        return;
    }
  }

  private onModelError(e: { type?: string; code?: string | null; message?: string; param?: string | null } | undefined): void {
    const policy = modelErrorPolicy(e);
    const fields = { code: e?.code, type: e?.type, message: e?.message, param: e?.param };
    if (policy === 'ignore') {
      this.faults.modelErrorHandled('ignored');
      this.log.debug(fields, 'model error (harmless race)');
      return;
    }
    this.metrics.modelError(e?.code);
    if (policy === 'continue') {
      this.stats.modelErrors++;
      this.faults.modelErrorHandled('logged');
      this.log.warn(fields, 'model error; the call goes on');
      return;
    }
    this.faults.modelErrorHandled('ended_call');
    this.log.error(fields, 'model error ends its session; ending the call');
    this.end('model_error', 1011, `model error: ${typeof e?.code === 'string' ? e.code : 'fatal'}`);
  }

  private onModelClose(code: number, reason: string): void {
    if (this.ended) return;
    this.log.error({ code, reason, modelReady: this.modelReady }, 'model session closed; ending the call');
    // Closing the stream ends <Connect>: Twilio runs the TwiML after it (or hangs up), so the
    // caller is never left on a silent line.
    this.end('model_failed', 1011, this.modelReady ? 'model session closed' : 'model session failed');
  }

  // ---- pacing and marks -----------------------------------------------------------------------

  /** The pacer ticker: keeps Twilio's buffer topped up between model deltas. */
  tick(t: number): void {
    if (this.ended || !this.streamSid || this.dsp.queuedBytes() === 0) return;
    this.pumpAt = t;
    this.carrier.batch(this.pumpBatched);
  }

  private pumpAt = 0;
  /** Bytes makeRoom needs handed on to Twilio beyond the usual surplus (0 outside makeRoom). */
  private handOver = 0;
  private readonly pumpBatched = () => this.pump(this.pumpAt);

  /**
   * Twilio-side backpressure: true while the socket's send buffer is over OUTBOUND_PAUSE_BYTES
   * (the kernel is not taking what we send). Bot audio then waits in the outbound queue instead
   * of piling up in uWS's buffer, where past WS_MAX_BACKPRESSURE_BYTES it would be dropped
   * mid-stream, frame by frame. Never blocks: pumping just stops until a later tick.
   */
  private carrierBackedUp(): boolean {
    const buffered = this.carrier.bufferedAmount?.() ?? 0;
    const over = buffered > this.outboundPauseBytes;
    if (over !== this.outboundPaused) {
      this.outboundPaused = over;
      // A socket hovering at the limit flips often: log the 1st, 2nd, 4th, 8th... pause only.
      const n = over ? ++this.stats.outboundPauses : this.stats.outboundPauses;
      const logIt = (n & (n - 1)) === 0;
      if (over) {
        this.faults.carrierPaused();
        if (logIt) {
          this.log.warn({ bufferedBytes: buffered, limitBytes: this.outboundPauseBytes, queuedMs: this.dsp.queuedBytes() / 8, pauses: n },
            'twilio socket backed up: bot audio paused');
        }
      } else if (logIt) {
        this.log.info({ queuedMs: this.dsp.queuedBytes() / 8, pauses: n }, 'twilio socket drained: bot audio resumes');
      }
    }
    return over;
  }

  /** Sends frames until Twilio holds `playbackLeadMs` of audio. */
  pump(t: number): void {
    if (this.ended || !this.streamSid) return;
    if (this.carrierBackedUp()) return;
    const pb = this.playback;
    // A long response arrives much faster than real time; what is over half the queue is handed
    // to Twilio's own buffer rather than dropped, however much Twilio already holds. Pumped after
    // every delta, so only a single delta of more than half the queue can overflow it.
    const queued = this.dsp.queuedBytes();
    let surplus = Math.max(queued - (queued + this.dsp.queueSpace()) / 2, this.handOver);
    const lead = this.opts.playbackLeadMs;
    let sent = 0;
    while (surplus > 0 || pb.bufferedMs(t) < lead) {
      // A large hand-over can fill the socket's buffer itself: re-check every ~1 s of audio.
      if ((++sent & 63) === 0 && this.carrierBackedUp()) break;
      const frame = this.dsp.nextFrame(pb.audioDone);
      if (frame === null) break;
      const bytes = this.dsp.lastFrameBytes();
      // Twilio plays it when its buffer reaches it: now if the buffer ran dry.
      this.echo.sent(bytes, t + Math.max(0, pb.bufferedMs(t)), t);
      this.carrier.send(frame);
      surplus -= bytes;
      this.stats.framesOut++;
      if (this.stats.firstAudioMs === null) this.stats.firstAudioMs = Math.round(t - this.opened);
      this.played(bytes, t, pb.audioDone && this.dsp.queuedBytes() === 0);
    }
  }

  // ---- what is queued, item by item ------------------------------------------------------------
  // The outbound ring holds bytes only; these segments say which item each queued byte belongs
  // to, so the playback bookkeeping (what the caller heard, of which item) follows the audio
  // actually sent rather than the item last queued: a new item's deltas may arrive while the
  // previous item is still playing.

  /** Queued audio by item, oldest first (a few entries: one per item in the queue). */
  private readonly segments: { id: string; bytes: number }[] = [];
  /** The item the DSP is queuing audio for (the last delta's). */
  private queuingItem = '';

  private queued(id: string, bytes: number): void {
    if (bytes <= 0) return;
    const last = this.segments[this.segments.length - 1];
    if (last !== undefined && last.id === id) last.bytes += bytes;
    else this.segments.push({ id, bytes });
  }

  /** `bytes` of the oldest queued audio left the queue unsent (dropped). */
  private unqueued(bytes: number): void {
    while (bytes > 0 && this.segments.length > 0) {
      const s = this.segments[0];
      const k = Math.min(bytes, s.bytes);
      s.bytes -= k;
      bytes -= k;
      if (s.bytes === 0) this.segments.shift();
    }
  }

  /** A frame of `bytes` was sent: credits each item its part, sends the marks due after it. */
  private played(bytes: number, t: number, last: boolean): void {
    const pb = this.playback;
    let mark: string | null = null;
    if (this.segments.length === 0) {
      mark = pb.sent(bytes / 8, t, last);
    } else {
      while (bytes > 0 && this.segments.length > 0) {
        const s = this.segments[0];
        const k = Math.min(bytes, s.bytes);
        if (s.id !== pb.currentItemId) {
          // The previous item's last mark goes before the new item starts.
          if (mark !== null) this.sendMark(mark);
          pb.startItem(s.id);
        }
        s.bytes -= k;
        bytes -= k;
        if (s.bytes === 0) this.segments.shift();
        mark = pb.sent(k / 8, t, last && bytes === 0);
      }
    }
    if (mark !== null) this.sendMark(mark);
  }

  private sendMark(name: string): void {
    this.carrier.send(serializeMark(this.streamSid, name));
    this.stats.marksSent++;
  }

  private onMark(name: string): void {
    if (this.playback.played(name, this.now())) this.stats.marksPlayed++;
    else this.stats.marksCleared++;
  }

  /** Bot audio is queued here or still buffered at Twilio. */
  private botAudible(t: number): boolean {
    return this.dsp.queuedBytes() > 0 || this.playback.bufferedMs(t) > 0;
  }

  /** The bot is talking or about to: audio is playing, or a response is being generated. */
  private botTurn(t: number): boolean {
    return this.activeResponse !== undefined || this.botAudible(t);
  }

  /** Items announced per response (the last few responses, a few items each). */
  private readonly responseItems = new Map<string, string[]>();

  private noteItem(responseId: string, itemId: string): void {
    let items = this.responseItems.get(responseId);
    if (!items) {
      if (this.responseItems.size >= 4) this.responseItems.delete(this.responseItems.keys().next().value!);
      items = [];
      this.responseItems.set(responseId, items);
    }
    if (items.length < 4 && !items.includes(itemId)) items.push(itemId);
  }

  private cancelItem(id: string): void {
    if (this.cancelledItems.includes(id)) return;
    // A few are enough: only the items a barge-in just cut can still send audio.
    if (this.cancelledItems.length >= 8) this.cancelledItems.shift();
    this.cancelledItems.push(id);
  }

  // ---- barge-in -------------------------------------------------------------------------------

  private bargeIn(t: number, source: 'local_vad' | 'model_vad'): void {
    const pb = this.playback;
    // What the caller heard of the item still playing, or of the active response's item (its
    // audio may have run dry mid-item). An earlier item that played to its end needs nothing.
    const playing = pb.currentItemId;
    const current = pb.bufferedMs(t) > 0 || (playing !== undefined &&
      (this.segments[0]?.id === playing || playing === this.activeItem));
    const heard = current ? pb.heard(t) : null;
    // Twilio's buffer first (what the caller hears), then the model, all in this same tick.
    // (Before `start` nothing was sent: there is no Twilio buffer to clear, nor a streamSid.)
    // Twilio plays behind our estimate (network, its jitter buffer): audio that played within
    // the last lead may still be in its buffer, and a clear that finds nothing costs nothing.
    const mayHold = this.dsp.queuedBytes() > 0 || this.playback.bufferedMs(t) > -this.opts.playbackLeadMs;
    if (mayHold && this.streamSid) this.carrier.send(serializeClear(this.streamSid));
    // t: when the onset frame arrived.
    this.metrics.bargeIn((this.now() - t) / 1000);
    if (this.activeResponse !== undefined) {
      this.model.send({ type: 'response.cancel' });
      this.cancelledResponse = this.activeResponse;
      // Its audio item, if announced but not playing yet, must not start later.
      if (this.activeItem !== undefined) this.cancelItem(this.activeItem);
      // Any other item announced for it (even before its response.created) must not start later.
      for (const id of this.responseItems.get(this.activeResponse) ?? []) this.cancelItem(id);
      this.activeResponse = undefined;
    }
    // What was playing and what was queued is cut: late deltas of those items never play.
    if (playing !== undefined) this.cancelItem(playing);
    for (const seg of this.segments) this.cancelItem(seg.id);
    this.segments.length = 0;
    if (heard) {
      this.model.send({
        type: 'conversation.item.truncate',
        item_id: heard.itemId,
        content_index: 0,
        audio_end_ms: heard.audioEndMs,
      });
      this.stats.truncations.push({ itemId: heard.itemId, audioEndMs: heard.audioEndMs, sentMs: heard.sentMs });
      this.metrics.truncationError(heard.audioEndMs - heard.confirmedMs);
    }
    this.dsp.dropCurrentItem();
    this.echo.cleared(t);
    pb.cleared(pb.currentItemId, t);
    this.stats.bargeIns++;
    this.log.info({ source, audioEndMs: heard?.audioEndMs, sentMs: heard?.sentMs }, 'barge-in');
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Ends the call once: closes both sockets, frees the DSP state. */
  end(outcome: CallOutcome, code = 1000, reason = ''): void {
    if (this.ended) return;
    this.outcome = outcome;
    this.endCount++;
    clearTimeout(this.startTimer);
    this.stats.gapMs = this.dsp.gapMs();
    try {
      this.model.close(1000, reason);
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'closing the model session threw');
    }
    if (outcome !== 'hangup' && !this.carrierGone) {
      try {
        this.carrier.close(code, reason);
      } catch {
        // already closed
      }
    }
    this.dsp.free();
    this.pendingAppends = [];
    this.pendingBytes = 0;
    this.log.info({ outcome, code: outcome === 'hangup' ? undefined : code, reason: reason || undefined,
      durationMs: Math.round(this.now() - this.opened), ...this.summary() }, 'call ended');
    this.onEnd(this);
  }

  /** Times end() ran to completion (tests: exactly once). */
  get endings(): number { return this.endCount; }

  summary() {
    const s = this.stats;
    return {
      framesIn: s.framesIn, framesOut: s.framesOut, marksSent: s.marksSent, marksPlayed: s.marksPlayed,
      marksCleared: s.marksCleared, bargeIns: s.bargeIns, badMessages: s.badMessages, gapMs: s.gapMs,
      firstAudioMs: s.firstAudioMs,
      // Only when something went wrong, to keep the usual line short.
      ...(s.callerAudioDroppedMs > 0 ? { callerAudioDroppedMs: Math.round(s.callerAudioDroppedMs) } : {}),
      ...(s.botAudioDroppedMs > 0 ? { botAudioDroppedMs: Math.round(s.botAudioDroppedMs) } : {}),
      ...(s.outboundPauses > 0 ? { outboundPauses: s.outboundPauses } : {}),
      ...(s.modelErrors > 0 ? { modelErrors: s.modelErrors } : {}),
      ...(s.failedResponses > 0 ? { failedResponses: s.failedResponses } : {}),
    };
  }
}
