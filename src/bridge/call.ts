// One call: Twilio stream <-> model session. Owns the call's DSP state, the outbound pacer and
// the barge-in decision. Everything per frame goes through CallDsp (one WASM call each way);
// this file only routes bytes and keeps the bookkeeping of what the caller has heard.
import type { Logger } from 'pino';
import {
  CallDsp,
  DELTA_DROPPED,
  DELTA_NEW_ITEM,
  ERR_NEEDS_PARSE,
  ERR_NOT_MEDIA,
  VAD_ONSET,
  type ModelAudioFormat,
  type VadParams,
} from '../dsp/call.js';
import { badMessageKind, NOOP_METRICS, type BridgeMetrics } from '../metrics.js';
import type { ModelLink } from '../model/client.js';
import type { ServerEvent } from '../model/protocol.js';
import { parseControlMessage, serializeClear, serializeMark, type TwilioStart } from '../twilio/protocol.js';
import { DEFAULT_ECHO_MARGIN_DB, EchoGate } from './echo.js';
import { Playback } from './playback.js';

/** The carrier side of a call as the core sees it (a Twilio WebSocket here). */
export interface CarrierSocket {
  /** Sends one text message; bytes are copied before return. */
  send(message: Uint8Array | string): void;
  /** Closes the stream so the carrier runs whatever follows (TwiML after </Connect>). */
  close(code: number, reason: string): void;
  /** Runs fn with sends batched into one write (uWS cork) when called outside a socket handler. */
  batch(fn: () => void): void;
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
}

export type CallOutcome =
  | 'completed' // Twilio sent stop
  | 'hangup' // the Twilio socket closed without stop
  | 'model_failed' // model session never became ready, or dropped mid-call
  | 'no_start' // Twilio never sent start
  | 'bad_stream' // the stream's format is not what we bridge
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
}

const now = () => performance.now();

export class Call {
  readonly dsp: CallDsp;
  readonly stats: CallStats = {
    framesIn: 0, framesOut: 0, marksSent: 0, marksPlayed: 0, marksCleared: 0, bargeIns: 0,
    badMessages: 0, gapMs: 0, firstAudioMs: null, truncations: [],
  };
  callSid = '';
  streamSid = '';
  customParameters: Record<string, string> = {};
  outcome: CallOutcome | undefined;

  private readonly opened = now();
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
    this.metrics = opts.metrics ?? NOOP_METRICS;
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
    const t = now();
    const t0 = this.metrics.dspStart();
    const code = this.dsp.inboundMessage(bytes, this.echo.beforeInbound(t));
    this.metrics.dspEnd('inbound', t0);
    if (code >= 0) {
      this.onInboundAudio(code, t);
      return;
    }
    if (code !== ERR_NOT_MEDIA && code !== ERR_NEEDS_PARSE) {
      this.badMessage(code === -3 ? 'media payload is not valid base64' : 'media payload too large');
      return;
    }
    this.onControlText(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), t);
  }

  private onInboundAudio(flags: number, t: number): void {
    this.stats.framesIn++;
    // Twilio always starts with `start`; audio before it is kept (the session is open) but the
    // stream is not identified yet, so it counts as a protocol anomaly.
    if (!this.streamSid) this.badMessage('media before start: audio kept, stream not yet identified');
    const append = this.dsp.appendMessage();
    if (this.modelReady) this.model.sendRaw(append);
    else this.pendingAppends.push(Buffer.from(append));
    if ((flags & VAD_ONSET) !== 0 && this.opts.bargeIn && this.botTurn(t)) this.bargeIn(t, 'local_vad');
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
        else this.badMessage(code === -3 ? 'media payload is not valid base64' : 'media payload too large');
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
    this.badMessage('binary frame');
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
    this.log.info({ afterMs: Math.round(now() - this.opened), buffered: this.pendingAppends.length }, 'model session ready');
    for (const b of this.pendingAppends) this.model.sendRaw(b);
    this.pendingAppends = [];
    if (this.opts.greeting) {
      this.model.send({
        type: 'response.create',
        response: { instructions: `Greet the caller by saying: ${this.opts.greeting}` },
      });
    }
  }

  private onModelAudio(msg: Uint8Array): void {
    if (this.ended) return;
    const t0 = this.metrics.dspStart();
    let r = this.dsp.outboundMessage(msg);
    this.metrics.dspEnd('outbound', t0);
    if (r === ERR_NEEDS_PARSE || r === -4) r = this.outboundSlowPath(msg);
    if (r === DELTA_DROPPED) return;
    if (r < 0) {
      this.log.warn({ code: r }, 'model audio delta rejected');
      return;
    }
    if ((r & DELTA_NEW_ITEM) !== 0) {
      const itemId = this.dsp.currentItemId();
      if (this.cancelledItems.includes(itemId)) {
        // The first audio of a response cancelled before it was heard: drop it and the rest.
        this.dsp.dropCurrentItem();
        return;
      }
      this.playback.startItem(itemId);
      if (this.answerDueAt >= 0) {
        this.metrics.modelFirstAudio((now() - this.answerDueAt) / 1000);
        this.answerDueAt = -1;
      }
    }
    this.playback.queued(r & ~DELTA_NEW_ITEM);
    if (this.dsp.queueSpace() === 0 && !this.warnedQueueFull) {
      // Only a single delta bigger than half the queue gets here (see pump).
      this.warnedQueueFull = true;
      this.log.warn({ queueSeconds: this.opts.queueSeconds }, 'outbound queue full: bot audio may have been dropped (raise QUEUE_SECONDS)');
    }
    this.tick(now());
  }

  private outboundSlowPath(msg: Uint8Array): number {
    let ev: { item_id?: unknown; delta?: unknown };
    try {
      ev = JSON.parse(Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength).toString('utf8'));
    } catch {
      return -1;
    }
    if (typeof ev.delta !== 'string') return -1;
    const itemId = typeof ev.item_id === 'string' ? ev.item_id : this.playback.currentItemId;
    if (itemId === this.playback.droppedItemId || (itemId !== undefined && this.cancelledItems.includes(itemId))) return DELTA_DROPPED;
    const r = this.dsp.outboundAudio(ev.delta);
    if (r >= 0 && itemId !== this.playback.currentItemId) this.playback.startItem(itemId ?? '');
    return r;
  }

  private onModelEvent(ev: ServerEvent): void {
    if (this.ended) return;
    switch (ev.type) {
      case 'input_audio_buffer.speech_started': {
        // Fallback: the model heard speech our VAD missed while the bot was audible. Not while
        // the bot's own echo could be what it heard: the model cannot tell, the echo gate can.
        const t = now();
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
        this.answerDueAt = now();
        return;
      case 'response.output_audio.done':
        this.playback.audioDone = true;
        this.tick(now());
        return;
      case 'response.created':
        this.playback.audioDone = false;
        this.activeResponse = ev.response?.id ?? '?';
        this.activeItem = undefined;
        return;
      case 'response.output_item.added':
        if (ev.response_id === this.activeResponse && ev.item?.id) this.activeItem = ev.item.id;
        // An item of a response already cancelled (its audio never started): never play it.
        if (ev.response_id !== undefined && ev.response_id === this.cancelledResponse && ev.item?.id) this.cancelItem(ev.item.id);
        return;
      case 'response.done':
        if (ev.response?.id === this.activeResponse || ev.response?.id === undefined) this.activeResponse = undefined;
        return;
      case 'error': {
        const e = ev.error;
        if (e?.code === 'response_cancel_not_active') return; // harmless race with the model's own VAD
        this.metrics.modelError(e?.code);
        this.log.error({ code: e?.code, type: e?.type, message: e?.message }, 'model error');
        return;
      }
      default:
        return;
    }
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
  private readonly pumpBatched = () => this.pump(this.pumpAt);

  /** Sends frames until Twilio holds `playbackLeadMs` of audio. */
  pump(t: number): void {
    if (this.ended || !this.streamSid) return;
    const pb = this.playback;
    // A long response arrives much faster than real time; what is over half the queue is handed
    // to Twilio's own buffer rather than dropped, however much Twilio already holds. Pumped after
    // every delta, so only a single delta of more than half the queue can overflow it.
    const queued = this.dsp.queuedBytes();
    let surplus = queued - (queued + this.dsp.queueSpace()) / 2;
    const lead = this.opts.playbackLeadMs;
    while (surplus > 0 || pb.bufferedMs(t) < lead) {
      const frame = this.dsp.nextFrame(pb.audioDone);
      if (frame === null) break;
      // Twilio plays it when its buffer reaches it: now if the buffer ran dry.
      this.echo.sent(frame.length, this.dsp.lastFrameBytes(), t + Math.max(0, pb.bufferedMs(t)), t);
      this.carrier.send(frame);
      surplus -= this.dsp.lastFrameBytes();
      this.stats.framesOut++;
      if (this.stats.firstAudioMs === null) this.stats.firstAudioMs = Math.round(t - this.opened);
      const mark = pb.sent(this.dsp.lastFrameBytes() / 8, t, pb.audioDone && this.dsp.queuedBytes() === 0);
      if (mark !== null) {
        this.carrier.send(serializeMark(this.streamSid, mark));
        this.stats.marksSent++;
      }
    }
  }

  private onMark(name: string): void {
    if (this.playback.played(name, now())) this.stats.marksPlayed++;
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

  private cancelItem(id: string): void {
    if (this.cancelledItems.includes(id)) return;
    // A few are enough: only the response being cancelled can still send audio.
    if (this.cancelledItems.length >= 4) this.cancelledItems.shift();
    this.cancelledItems.push(id);
  }

  // ---- barge-in -------------------------------------------------------------------------------

  private bargeIn(t: number, source: 'local_vad' | 'model_vad'): void {
    const pb = this.playback;
    // What the caller heard of the item still playing, or of the active response's item (its
    // audio may have run dry mid-item). An earlier item that played to its end needs nothing.
    const current = this.botAudible(t) || (pb.currentItemId !== undefined && pb.currentItemId === this.activeItem);
    const heard = current ? pb.heard(t) : null;
    // Twilio's buffer first (what the caller hears), then the model, all in this same tick.
    if (this.botAudible(t)) this.carrier.send(serializeClear(this.streamSid));
    // t: when the onset frame arrived.
    this.metrics.bargeIn((now() - t) / 1000);
    if (this.activeResponse !== undefined) {
      this.model.send({ type: 'response.cancel' });
      this.cancelledResponse = this.activeResponse;
      // Its audio item, if announced but not playing yet, must not start later.
      if (this.activeItem !== undefined && this.activeItem !== pb.currentItemId) this.cancelItem(this.activeItem);
      this.activeResponse = undefined;
    }
    if (heard) {
      this.model.send({
        type: 'conversation.item.truncate',
        item_id: heard.itemId,
        content_index: 0,
        audio_end_ms: heard.audioEndMs,
      });
      this.stats.truncations.push({ itemId: heard.itemId, audioEndMs: heard.audioEndMs, sentMs: heard.sentMs });
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
    clearTimeout(this.startTimer);
    this.stats.gapMs = this.dsp.gapMs();
    this.model.close(1000, reason);
    if (outcome !== 'hangup') {
      try {
        this.carrier.close(code, reason);
      } catch {
        // already closed
      }
    }
    this.dsp.free();
    this.pendingAppends = [];
    this.log.info({ outcome, durationMs: Math.round(now() - this.opened), ...this.summary() }, 'call ended');
    this.onEnd(this);
  }

  summary() {
    const s = this.stats;
    return {
      framesIn: s.framesIn, framesOut: s.framesOut, marksSent: s.marksSent, marksPlayed: s.marksPlayed,
      marksCleared: s.marksCleared, bargeIns: s.bargeIns, badMessages: s.badMessages, gapMs: s.gapMs,
      firstAudioMs: s.firstAudioMs,
    };
  }
}
