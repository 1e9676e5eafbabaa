// One session of the local model: the GA Realtime protocol as a bridge sees it (session config,
// input buffer + server VAD, audio responses, cancel, truncate, tool calls), plus scripted faults
// and a record of everything the client sent, for tests.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import {
  concatPcm,
  decodeAudio,
  encodeAudio,
  formatObjectOf,
  formatRate,
  parseFormat,
  resample,
  toneSweep,
  type LocalFormat,
} from './audio.js';
import { EnergyVad } from './vad.js';
import type { LocalModelOptions } from './options.js';

export interface RecordedClientEvent {
  type: string;
  event_id?: string;
  /** ms since the socket opened */
  at: number;
  [field: string]: unknown;
}

/** A server event as sent; audio deltas keep their ids and byte count, not the audio. */
export interface RecordedServerEvent {
  type: string;
  [field: string]: unknown;
}

export interface ResponseRecord {
  id: string;
  /** assistant item id (message or function_call) */
  itemId: string;
  kind: 'audio' | 'function_call';
  trigger: 'vad' | 'create';
  status: 'in_progress' | 'completed' | 'cancelled' | 'failed';
  cancelReason?: string;
  source: 'echo' | 'greeting' | 'fixed' | 'none';
  format: LocalFormat;
  /** All the audio this response would play, PCM16 at the output format's rate. */
  audio: Int16Array;
  /** Samples of `audio` sent in deltas so far. */
  sentSamples: number;
  deltas: number;
  callId?: string;
}

export interface TruncationRecord {
  item_id: string;
  content_index: number;
  audio_end_ms: number;
  /** The item's audio length when truncated. */
  item_audio_ms: number;
}

interface Item {
  id: string;
  type: 'message' | 'function_call' | 'function_call_output' | string;
  role?: 'user' | 'assistant' | 'system';
  /** assistant audio: samples sent, at `rate` */
  audioSamples: number;
  rate: number;
  callId?: string;
}

interface Utterance {
  itemId: string;
  pcm: Int16Array;
  rate: number;
  answeredByCall: boolean;
}

interface Active {
  rec: ResponseRecord;
  cancelTimer: (() => void) | undefined;
  chunk: number;
  words: string[];
  wordIdx: number;
  transcript: string;
}

/** Shared with the server: options are read live, so a test may change them between steps. */
export interface SessionHost {
  options: LocalModelOptions;
  serial: number;
}

const KNOWN_SESSION_KEYS = new Set([
  'type', 'model', 'output_modalities', 'instructions', 'audio', 'tools', 'tool_choice', 'max_output_tokens',
  'tracing', 'truncation', 'prompt', 'include', 'reasoning', 'parallel_tool_calls', 'id', 'object', 'expires_at',
]);
const KNOWN_INPUT_KEYS = new Set(['format', 'transcription', 'noise_reduction', 'turn_detection']);
const KNOWN_OUTPUT_KEYS = new Set(['format', 'voice', 'speed']);

const CLIENT_EVENTS = [
  'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear',
  'conversation.item.create', 'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve',
  'response.create', 'response.cancel', 'output_audio_buffer.clear',
];

function defaultTurnDetection(): Record<string, unknown> {
  return {
    type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500, idle_timeout_ms: null,
    create_response: true, interrupt_response: true,
  };
}

function schedule(ms: number, fn: () => void): () => void {
  if (ms > 0 && Number.isFinite(ms)) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  }
  const i = setImmediate(fn);
  return () => clearImmediate(i);
}

export class LocalSession {
  readonly id: string;
  /** The `model` query parameter of the upgrade. */
  readonly model: string;
  readonly headers: IncomingHttpHeaders;
  /** The effective GA session config (what session.updated reports). */
  config: Record<string, any>;
  inFormat: LocalFormat = 'pcm24k';
  outFormat: LocalFormat = 'pcm24k';
  /** Every client event, in order (append: byte count only). */
  readonly events: RecordedClientEvent[] = [];
  /** Every server event sent (deltas without audio). */
  readonly sent: RecordedServerEvent[] = [];
  readonly responses: ResponseRecord[] = [];
  readonly truncations: TruncationRecord[] = [];
  /** Input audio samples received (at the input format's rate). */
  inputSamples = 0;
  deltasSent = 0;
  closed = false;
  closeCode: number | undefined;
  dropped = false;

  private readonly ws: WebSocket;
  private readonly host: SessionHost;
  private readonly num: number;
  private readonly t0 = performance.now();
  private readonly emitter = new EventEmitter();
  private counter = 0;
  private clientEvents = 0;
  private readonly inputLog: Int16Array[] = [];
  // Uncommitted input: chunks with absolute start positions (samples since the format was set).
  private bufChunks: { start: number; pcm: Int16Array }[] = [];
  private bufStart = 0;
  private pos = 0;
  private posOffsetMs = 0;
  private vad: EnergyVad | null = null;
  private speechItemId: string | undefined;
  private speechStart = 0;
  private readonly items = new Map<string, Item>();
  private lastItemId: string | null = null;
  private utterance: Utterance | null = null;
  private active: Active | null = null;
  private readonly timers = new Set<() => void>();

  constructor(ws: WebSocket, host: SessionHost, model: string, headers: IncomingHttpHeaders) {
    this.ws = ws;
    this.host = host;
    this.num = ++host.serial;
    this.id = `sess_local_${this.num}`;
    this.model = model;
    this.headers = headers;
    this.emitter.setMaxListeners(0);
    this.config = {
      type: 'realtime',
      object: 'realtime.session',
      id: this.id,
      model,
      output_modalities: ['audio'],
      instructions: 'You are the voicebridge local model: you repeat what the caller said.',
      tools: [],
      tool_choice: 'auto',
      max_output_tokens: 'inf',
      tracing: null,
      truncation: 'auto',
      prompt: null,
      expires_at: Math.floor(Date.now() / 1000) + 3600,
      audio: {
        input: { format: formatObjectOf('pcm24k'), transcription: null, noise_reduction: null, turn_detection: defaultTurnDetection() },
        output: { format: formatObjectOf('pcm24k'), voice: 'marin', speed: 1 },
      },
    };
    this.configureVad();
    ws.on('message', (data: Buffer) => this.onMessage(data));
    ws.on('close', (code: number) => this.onSocketClose(code));
    ws.on('error', () => {
      // 'close' follows; nothing else to do
    });
    this.sendEvent({ type: 'session.created', session: this.config });
    const o = this.opts;
    if (o.dropAfterMs !== undefined) this.later(o.dropAfterMs, () => this.drop());
  }

  private get opts(): LocalModelOptions {
    return this.host.options;
  }

  // ---- test helpers ------------------------------------------------------------------------

  /** All appended input audio, concatenated, as PCM16 at the input rate (see inputRate); empty with record: false. */
  input(): Int16Array {
    return concatPcm(this.inputLog);
  }

  get inputRate(): number {
    return formatRate(this.inFormat);
  }

  /** Resolves with the first client event of `type` (matching `pred`) at index >= `from`. */
  waitFor(type: string, pred: (ev: RecordedClientEvent) => boolean = () => true, from = 0): Promise<RecordedClientEvent> {
    return this.waitIn(this.events, 'client', type, pred, from);
  }

  /** Resolves with the first server event of `type` sent (matching `pred`) at index >= `from`. */
  waitForSent(type: string, pred: (ev: RecordedServerEvent) => boolean = () => true, from = 0): Promise<RecordedServerEvent> {
    return this.waitIn(this.sent, 'sent', type, pred, from);
  }

  /** Resolves when the socket has closed. */
  waitClosed(): Promise<number | undefined> {
    if (this.closed) return Promise.resolve(this.closeCode);
    return new Promise((resolve) => this.emitter.once('close', () => resolve(this.closeCode)));
  }

  private waitIn<T extends { type: string }>(
    list: T[], channel: string, type: string, pred: (ev: T) => boolean, from: number,
  ): Promise<T> {
    for (let i = from; i < list.length; i++) if (list[i].type === type && pred(list[i])) return Promise.resolve(list[i]);
    return new Promise((resolve, reject) => {
      const onEv = (ev: T) => {
        if (list.length - 1 < from || ev.type !== type || !pred(ev)) return;
        cleanup();
        resolve(ev);
      };
      const onClose = () => {
        cleanup();
        reject(new Error(`local model session closed while waiting for ${type}`));
      };
      const cleanup = () => {
        this.emitter.off(channel, onEv);
        this.emitter.off('close', onClose);
      };
      this.emitter.on(channel, onEv);
      if (this.closed) onClose();
      else this.emitter.once('close', onClose);
    });
  }

  /** Sends any server event (event_id added when missing). */
  sendEvent(ev: Record<string, unknown>): void {
    if (this.closed) return;
    const full = ev.event_id === undefined ? { type: ev.type, event_id: this.nextId('event'), ...ev } : ev;
    this.ws.send(JSON.stringify(full));
    this.recordSent(full as RecordedServerEvent);
  }

  /** Sends a raw text message as is. */
  sendRaw(text: string): void {
    if (!this.closed) this.ws.send(text);
  }

  close(code = 1000, reason = ''): void {
    this.ws.close(code, reason);
  }

  /** Abrupt end: no close frame (the client sees 1006). */
  terminate(): void {
    this.ws.terminate();
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private nextId(kind: string): string {
    return `${kind}_${this.num}_${++this.counter}`;
  }

  private later(ms: number, fn: () => void): () => void {
    const cancel = schedule(ms, () => {
      this.timers.delete(cancel);
      fn();
    });
    this.timers.add(cancel);
    return () => {
      this.timers.delete(cancel);
      cancel();
    };
  }

  private recordSent(ev: RecordedServerEvent): void {
    if (this.opts.record !== false) this.sent.push(ev);
    this.emitter.emit('sent', ev);
  }

  private record(ev: RecordedClientEvent): void {
    if (this.opts.record !== false) this.events.push(ev);
    this.emitter.emit('client', ev);
  }

  private error(code: string, message: string, clientEventId?: string, param: string | null = null, type = 'invalid_request_error'): void {
    this.sendEvent({ type: 'error', error: { type, code, message, param, event_id: clientEventId ?? null } });
  }

  private drop(): void {
    if (this.closed) return;
    this.dropped = true;
    this.stopActive();
    const code = this.opts.dropCode;
    if (code !== undefined) this.ws.close(code, 'local model: scripted drop');
    else this.ws.terminate();
  }

  private onSocketClose(code: number): void {
    this.closed = true;
    this.closeCode = code;
    this.stopActive();
    for (const cancel of [...this.timers]) cancel();
    this.timers.clear();
    this.emitter.emit('close');
  }

  private stopActive(): void {
    if (this.active?.cancelTimer) this.active.cancelTimer();
    if (this.active) this.active.cancelTimer = undefined;
  }

  // ---- client events -----------------------------------------------------------------------

  private onMessage(data: Buffer): void {
    if (this.closed) return;
    let ev: any;
    try {
      ev = JSON.parse(data.toString('utf8'));
    } catch {
      this.record({ type: '(invalid json)', at: this.now() });
      this.error('invalid_json', "We could not parse the JSON body of your request.");
      return;
    }
    if (typeof ev !== 'object' || ev === null || typeof ev.type !== 'string') {
      this.record({ type: '(no type)', at: this.now() });
      this.error('missing_required_parameter', "Missing required parameter: 'type'.", undefined, 'type');
      return;
    }
    const rec = this.summarize(ev);
    this.record(rec);
    const n = ++this.clientEvents;
    const fault = this.opts.errorAt;
    if (fault && fault.event === n) {
      this.error(fault.code ?? 'server_error', fault.message ?? `local model: scripted error at client event ${n}`, ev.event_id, null, fault.errorType ?? 'server_error');
      if (fault.close) this.ws.close(1011, 'local model: scripted error');
      return;
    }
    try {
      this.handle(ev);
    } catch (err) {
      this.error('server_error', `local model failed on ${ev.type}: ${(err as Error).message}`, ev.event_id, null, 'server_error');
    }
  }

  private now(): number {
    return Math.round((performance.now() - this.t0) * 10) / 10;
  }

  private summarize(ev: any): RecordedClientEvent {
    const rec: RecordedClientEvent = { type: ev.type, at: this.now() };
    if (ev.event_id !== undefined) rec.event_id = ev.event_id;
    for (const [k, v] of Object.entries(ev)) {
      if (k === 'type' || k === 'event_id') continue;
      if (k === 'audio' && ev.type === 'input_audio_buffer.append') {
        rec.bytes = typeof v === 'string' ? Buffer.byteLength(v, 'base64') : 0;
        continue;
      }
      rec[k] = v;
    }
    return rec;
  }

  private handle(ev: any): void {
    switch (ev.type) {
      case 'session.update':
        return this.onSessionUpdate(ev);
      case 'input_audio_buffer.append':
        return this.onAppend(ev);
      case 'input_audio_buffer.commit':
        return this.onCommit(ev);
      case 'input_audio_buffer.clear':
        this.clearBuffer();
        this.sendEvent({ type: 'input_audio_buffer.cleared' });
        return;
      case 'response.create':
        return this.startResponse('create', ev.event_id);
      case 'response.cancel':
        return this.onCancel(ev);
      case 'conversation.item.truncate':
        return this.onTruncate(ev);
      case 'conversation.item.create':
        return this.onItemCreate(ev);
      default:
        if (CLIENT_EVENTS.includes(ev.type)) {
          this.error('unsupported_event', `local model does not implement '${ev.type}'.`, ev.event_id, 'type');
          return;
        }
        this.error(
          'invalid_value',
          `Invalid value: '${ev.type}'. Supported values are: ${CLIENT_EVENTS.map((t) => `'${t}'`).join(', ')}.`,
          ev.event_id,
          'type',
        );
    }
  }

  // ---- session.update ----------------------------------------------------------------------

  private onSessionUpdate(ev: any): void {
    const s = ev.session;
    if (typeof s !== 'object' || s === null) {
      this.error('missing_required_parameter', "Missing required parameter: 'session'.", ev.event_id, 'session');
      return;
    }
    if (s.type === undefined) {
      this.error('missing_required_parameter', "Missing required parameter: 'session.type'.", ev.event_id, 'session.type');
      return;
    }
    if (s.type !== 'realtime') {
      this.error('invalid_value', `Invalid value: '${String(s.type)}'. Supported values are: 'realtime'.`, ev.event_id, 'session.type');
      return;
    }
    const unknown: string[] = [];
    for (const k of Object.keys(s)) if (!KNOWN_SESSION_KEYS.has(k)) unknown.push(`session.${k}`);
    const audio = s.audio ?? {};
    const input = audio.input ?? {};
    const output = audio.output ?? {};
    for (const k of Object.keys(input)) if (!KNOWN_INPUT_KEYS.has(k)) unknown.push(`session.audio.input.${k}`);
    for (const k of Object.keys(output)) if (!KNOWN_OUTPUT_KEYS.has(k)) unknown.push(`session.audio.output.${k}`);
    if (unknown.length && this.opts.unknownSessionFields === 'error') {
      this.error('unknown_parameter', `Unknown parameter: '${unknown[0]}'.`, ev.event_id, unknown[0]);
      return;
    }
    // Validate everything before changing anything: a rejected update leaves the session as it was.
    let inFmt: LocalFormat | undefined;
    let outFmt: LocalFormat | undefined;
    if (input.format !== undefined) {
      const f = parseFormat(input.format);
      if (f !== 'pcm24k' && f !== 'pcmu' && f !== 'pcma') {
        this.error('invalid_value', f, ev.event_id, 'session.audio.input.format');
        return;
      }
      inFmt = f;
    }
    if (output.format !== undefined) {
      const f = parseFormat(output.format);
      if (f !== 'pcm24k' && f !== 'pcmu' && f !== 'pcma') {
        this.error('invalid_value', f, ev.event_id, 'session.audio.output.format');
        return;
      }
      outFmt = f;
    }
    const td = input.turn_detection;
    if (td !== undefined && td !== null && td.type !== 'server_vad' && td.type !== 'semantic_vad') {
      this.error('invalid_value', `Invalid value: '${String(td?.type)}'. Supported values are: 'server_vad' and 'semantic_vad'.`, ev.event_id, 'session.audio.input.turn_detection.type');
      return;
    }

    const c = this.config;
    for (const k of ['output_modalities', 'instructions', 'tools', 'tool_choice', 'max_output_tokens', 'tracing', 'truncation', 'prompt', 'include']) {
      if (s[k] !== undefined) c[k] = s[k];
    }
    if (inFmt && inFmt !== this.inFormat) {
      this.inFormat = inFmt;
      // A new input format starts a new sample timeline; what was buffered is dropped.
      this.posOffsetMs = this.ms(this.pos);
      this.pos = 0;
      this.bufStart = 0;
      this.bufChunks = [];
    }
    if (inFmt) c.audio.input.format = formatObjectOf(inFmt);
    if (outFmt) {
      this.outFormat = outFmt;
      c.audio.output.format = formatObjectOf(outFmt);
    }
    if (td !== undefined) {
      c.audio.input.turn_detection =
        td === null ? null : td.type === 'server_vad' ? { ...defaultTurnDetection(), ...td } : { eagerness: 'auto', create_response: true, interrupt_response: true, ...td };
    }
    if (input.transcription !== undefined) c.audio.input.transcription = input.transcription;
    if (input.noise_reduction !== undefined) c.audio.input.noise_reduction = input.noise_reduction;
    if (output.voice !== undefined) c.audio.output.voice = output.voice;
    if (output.speed !== undefined) c.audio.output.speed = output.speed;
    this.configureVad();
    if (this.opts.noSessionUpdated) return;
    this.sendEvent({ type: 'session.updated', session: structuredClone(c) });
  }

  private turnDetection(): Record<string, any> | null {
    return this.config.audio.input.turn_detection ?? null;
  }

  private configureVad(): void {
    const td = this.turnDetection();
    if (!td) {
      this.vad = null;
      return;
    }
    const threshold = typeof td.threshold === 'number' ? td.threshold : 0.5;
    this.vad = new EnergyVad({
      rate: this.inputRate,
      rmsThreshold: this.opts.vadRms ?? 2000 * threshold,
      silenceMs: typeof td.silence_duration_ms === 'number' ? td.silence_duration_ms : 500,
    });
    this.vad.reset(this.pos);
    this.speechItemId = undefined;
  }

  // ---- input buffer and VAD ----------------------------------------------------------------

  private ms(sample: number): number {
    return this.posOffsetMs + (sample * 1000) / this.inputRate;
  }

  private onAppend(ev: any): void {
    if (typeof ev.audio !== 'string') {
      this.error('missing_required_parameter', "Missing required parameter: 'audio'.", ev.event_id, 'audio');
      return;
    }
    const pcm = decodeAudio(Buffer.from(ev.audio, 'base64'), this.inFormat);
    if (pcm.length === 0) return;
    if (this.opts.record !== false) this.inputLog.push(pcm);
    this.inputSamples += pcm.length;
    this.bufChunks.push({ start: this.pos, pcm });
    this.pos += pcm.length;
    if (!this.vad) return;
    for (const e of this.vad.push(pcm)) {
      if (e.kind === 'start') this.onSpeechStart(e.sample);
      else this.onSpeechStop(e.sample);
    }
    if (!this.vad.speaking) {
      // Keep only what a next utterance's prefix padding can reach back to.
      const td = this.turnDetection();
      const keep = (((td?.prefix_padding_ms as number) ?? 300) + 500) * this.inputRate / 1000;
      this.dropBufferBefore(this.pos - keep);
    }
  }

  private onSpeechStart(sample: number): void {
    const td = this.turnDetection() ?? {};
    const prefix = Math.round((((td.prefix_padding_ms as number) ?? 300) * this.inputRate) / 1000);
    this.speechStart = Math.max(this.bufStart, sample - prefix);
    this.speechItemId = this.nextId('item');
    this.sendEvent({
      type: 'input_audio_buffer.speech_started',
      audio_start_ms: Math.round(this.ms(this.speechStart)),
      item_id: this.speechItemId,
    });
    if (this.active && td.interrupt_response !== false) this.finish('cancelled', 'turn_detected');
  }

  private onSpeechStop(sample: number): void {
    const itemId = this.speechItemId ?? this.nextId('item');
    this.speechItemId = undefined;
    this.sendEvent({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: Math.round(this.ms(sample)), item_id: itemId });
    this.commit(this.speechStart, sample, itemId);
    const td = this.turnDetection();
    if (td && td.create_response !== false && !this.active) this.startResponse('vad');
  }

  private onCommit(ev: any): void {
    const ms = ((this.pos - this.bufStart) * 1000) / this.inputRate;
    if (ms < 100) {
      this.error(
        'input_audio_buffer_commit_empty',
        `Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has ${ms.toFixed(2)}ms of audio.`,
        ev.event_id,
      );
      return;
    }
    const itemId = this.speechItemId ?? this.nextId('item');
    this.speechItemId = undefined;
    this.commit(this.bufStart, this.pos, itemId);
    this.vad?.reset(this.pos);
  }

  private commit(from: number, to: number, itemId: string): void {
    const pcm = this.sliceBuffer(from, to);
    this.dropBufferBefore(to);
    this.items.set(itemId, { id: itemId, type: 'message', role: 'user', audioSamples: pcm.length, rate: this.inputRate });
    const previous = this.lastItemId;
    this.lastItemId = itemId;
    this.utterance = { itemId, pcm, rate: this.inputRate, answeredByCall: false };
    this.sendEvent({ type: 'input_audio_buffer.committed', previous_item_id: previous, item_id: itemId });
    this.sendEvent({
      type: 'conversation.item.added',
      previous_item_id: previous,
      item: { id: itemId, object: 'realtime.item', type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_audio', transcript: null }] },
    });
  }

  private clearBuffer(): void {
    this.dropBufferBefore(this.pos);
    this.speechItemId = undefined;
    this.vad?.reset(this.pos);
  }

  private sliceBuffer(from: number, to: number): Int16Array {
    const out = new Int16Array(Math.max(0, to - from));
    for (const c of this.bufChunks) {
      const a = Math.max(from, c.start);
      const b = Math.min(to, c.start + c.pcm.length);
      if (b > a) out.set(c.pcm.subarray(a - c.start, b - c.start), a - from);
    }
    return out;
  }

  private dropBufferBefore(sample: number): void {
    if (sample <= this.bufStart) return;
    this.bufStart = sample;
    let k = 0;
    while (k < this.bufChunks.length && this.bufChunks[k].start + this.bufChunks[k].pcm.length <= sample) k++;
    if (k) this.bufChunks.splice(0, k);
  }

  // ---- responses ---------------------------------------------------------------------------

  private startResponse(trigger: 'vad' | 'create', clientEventId?: string): void {
    if (this.active) {
      if (trigger === 'create') {
        this.error(
          'conversation_already_has_active_response',
          `Conversation already has an active response in progress: ${this.active.rec.id}. Wait until the response is finished before creating a new one.`,
          clientEventId,
        );
      }
      return;
    }
    const o = this.opts;
    const rate = formatRate(this.outFormat);
    const fn = o.functionCall && this.utterance && !this.utterance.answeredByCall ? o.functionCall : undefined;
    let source: ResponseRecord['source'] = 'none';
    let audio: Int16Array = new Int16Array(0);
    if (!fn) {
      if (o.responseAudio) {
        source = 'fixed';
        audio = resample(o.responseAudio, 24000, rate);
        this.utterance = null;
      } else if (this.utterance) {
        source = 'echo';
        audio = resample(this.utterance.pcm, this.utterance.rate, rate);
        this.utterance = null;
      } else if (o.greeting !== 'none') {
        source = 'greeting';
        audio = resample(o.greeting instanceof Int16Array ? o.greeting : toneSweep(), 24000, rate);
      }
    }
    const rec: ResponseRecord = {
      id: this.nextId('resp'),
      itemId: this.nextId('item'),
      kind: fn ? 'function_call' : 'audio',
      trigger,
      status: 'in_progress',
      source,
      format: this.outFormat,
      audio,
      sentSamples: 0,
      deltas: 0,
    };
    this.responses.push(rec);
    // A long-running demo server keeps only the recent responses (and their audio).
    if (o.record === false && this.responses.length > 4) this.responses.splice(0, this.responses.length - 4);
    const words = fn ? [] : (o.transcript ?? (source === 'echo' ? 'echo' : source)).split(/(?<=\s)/).filter(Boolean);
    const active: Active = {
      rec,
      cancelTimer: undefined,
      chunk: Math.max(1, Math.round(((o.deltaMs ?? 100) * rate) / 1000)),
      words,
      wordIdx: 0,
      transcript: '',
    };
    this.active = active;
    this.sendEvent({
      type: 'response.created',
      response: {
        id: rec.id, object: 'realtime.response', status: 'in_progress', status_details: null, output: [],
        conversation_id: `conv_${this.num}`, output_modalities: ['audio'],
        audio: { output: { format: formatObjectOf(this.outFormat), voice: this.config.audio.output.voice } },
        usage: null, metadata: null,
      },
    });
    if (o.rateLimits) {
      this.sendEvent({
        type: 'rate_limits.updated',
        rate_limits: Array.isArray(o.rateLimits)
          ? o.rateLimits
          : [
              { name: 'requests', limit: 5000, remaining: 4999, reset_seconds: 0.012 },
              { name: 'tokens', limit: 40000, remaining: 39000, reset_seconds: 1.5 },
            ],
      });
    }
    if (fn) {
      active.cancelTimer = this.later(o.firstAudioDelayMs ?? 0, () => this.emitFunctionCall(fn));
      return;
    }
    this.items.set(rec.itemId, { id: rec.itemId, type: 'message', role: 'assistant', audioSamples: 0, rate });
    this.lastItemId = rec.itemId;
    this.sendEvent({
      type: 'response.output_item.added',
      response_id: rec.id,
      output_index: 0,
      item: { id: rec.itemId, object: 'realtime.item', type: 'message', role: 'assistant', status: 'in_progress', content: [] },
    });
    this.sendEvent({
      type: 'response.content_part.added',
      response_id: rec.id, item_id: rec.itemId, output_index: 0, content_index: 0,
      part: { type: 'audio', transcript: '' },
    });
    active.cancelTimer = this.later(o.firstAudioDelayMs ?? 0, () => this.pump());
  }

  private pump(): void {
    const a = this.active;
    if (!a || this.closed) return;
    const rec = a.rec;
    if (rec.sentSamples >= rec.audio.length) {
      this.finish('completed');
      return;
    }
    const end = Math.min(rec.audio.length, rec.sentSamples + a.chunk);
    const delta = Buffer.from(encodeAudio(rec.audio.subarray(rec.sentSamples, end), rec.format)).toString('base64');
    const o = this.opts;
    const eventId = this.nextId('event');
    // "type" first, like the real server, unless a test wants the client's slow path.
    const msg = o.deltaTypeLast
      ? { event_id: eventId, response_id: rec.id, item_id: rec.itemId, output_index: 0, content_index: 0, delta, type: 'response.output_audio.delta' }
      : { type: 'response.output_audio.delta', event_id: eventId, response_id: rec.id, item_id: rec.itemId, output_index: 0, content_index: 0, delta };
    this.ws.send(JSON.stringify(msg));
    const samples = end - rec.sentSamples;
    rec.sentSamples = end;
    rec.deltas++;
    this.deltasSent++;
    const item = this.items.get(rec.itemId);
    if (item) item.audioSamples = rec.sentSamples;
    this.recordSent({ type: 'response.output_audio.delta', event_id: eventId, response_id: rec.id, item_id: rec.itemId, samples, bytes: Buffer.byteLength(delta, 'base64') });
    if (a.wordIdx < a.words.length) {
      const w = a.words[a.wordIdx++];
      a.transcript += w;
      this.sendEvent({ type: 'response.output_audio_transcript.delta', response_id: rec.id, item_id: rec.itemId, output_index: 0, content_index: 0, delta: w });
    }
    if (o.dropAfterDeltas !== undefined && this.deltasSent >= o.dropAfterDeltas) {
      this.drop();
      return;
    }
    if (o.failAfterDeltas !== undefined && rec.deltas >= o.failAfterDeltas) {
      this.finish('failed');
      return;
    }
    const speed = o.speed ?? 4;
    a.cancelTimer = this.later(((o.deltaMs ?? 100) / speed), () => this.pump());
  }

  private finish(status: 'completed' | 'cancelled' | 'failed', reason?: string): void {
    const a = this.active;
    if (!a) return;
    this.stopActive();
    this.active = null;
    const rec = a.rec;
    rec.status = status;
    if (status === 'cancelled') rec.cancelReason = reason;
    const ids = { response_id: rec.id, item_id: rec.itemId, output_index: 0, content_index: 0 };
    const itemStatus = status === 'completed' ? 'completed' : 'incomplete';
    let item: Record<string, unknown>;
    if (rec.kind === 'audio') {
      const transcript = status === 'completed' ? a.words.join('') : a.transcript;
      this.sendEvent({ type: 'response.output_audio.done', ...ids });
      this.sendEvent({ type: 'response.output_audio_transcript.done', ...ids, transcript });
      this.sendEvent({ type: 'response.content_part.done', ...ids, part: { type: 'audio', transcript } });
      item = {
        id: rec.itemId, object: 'realtime.item', type: 'message', role: 'assistant', status: itemStatus,
        content: [{ type: 'output_audio', transcript }],
      };
      this.sendEvent({ type: 'response.output_item.done', response_id: rec.id, output_index: 0, item });
    } else {
      item = { id: rec.itemId, object: 'realtime.item', type: 'function_call', status: itemStatus, call_id: rec.callId, name: this.opts.functionCall?.name, arguments: '' };
    }
    const statusDetails =
      status === 'cancelled'
        ? { type: 'cancelled', reason: reason ?? 'client_cancelled' }
        : status === 'failed'
          ? { type: 'failed', error: { type: 'server_error', code: 'server_error', message: 'local model: scripted response failure' } }
          : null;
    this.sendEvent({
      type: 'response.done',
      response: {
        id: rec.id, object: 'realtime.response', status, status_details: statusDetails, output: [item],
        conversation_id: `conv_${this.num}`, output_modalities: ['audio'],
        usage: { total_tokens: 0, input_tokens: 0, output_tokens: 0 },
        metadata: null,
      },
    });
  }

  private emitFunctionCall(fn: NonNullable<LocalModelOptions['functionCall']>): void {
    const a = this.active;
    if (!a || this.closed) return;
    const rec = a.rec;
    const callId = this.nextId('call');
    rec.callId = callId;
    const args = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
    if (this.utterance) this.utterance.answeredByCall = true;
    this.items.set(rec.itemId, { id: rec.itemId, type: 'function_call', audioSamples: 0, rate: 0, callId });
    this.lastItemId = rec.itemId;
    const base = { id: rec.itemId, object: 'realtime.item', type: 'function_call', call_id: callId, name: fn.name };
    this.sendEvent({ type: 'response.output_item.added', response_id: rec.id, output_index: 0, item: { ...base, status: 'in_progress', arguments: '' } });
    this.sendEvent({ type: 'response.function_call_arguments.delta', response_id: rec.id, item_id: rec.itemId, output_index: 0, call_id: callId, delta: args });
    this.sendEvent({ type: 'response.function_call_arguments.done', response_id: rec.id, item_id: rec.itemId, output_index: 0, call_id: callId, name: fn.name, arguments: args });
    const item = { ...base, status: 'completed', arguments: args };
    this.sendEvent({ type: 'response.output_item.done', response_id: rec.id, output_index: 0, item });
    this.active = null;
    rec.status = 'completed';
    this.sendEvent({
      type: 'response.done',
      response: {
        id: rec.id, object: 'realtime.response', status: 'completed', status_details: null, output: [item],
        conversation_id: `conv_${this.num}`, output_modalities: ['audio'], usage: { total_tokens: 0, input_tokens: 0, output_tokens: 0 }, metadata: null,
      },
    });
  }

  private onCancel(ev: any): void {
    const a = this.active;
    if (!a || (ev.response_id !== undefined && ev.response_id !== a.rec.id)) {
      this.error('response_cancel_not_active', 'Cancellation failed: no active response found', ev.event_id);
      return;
    }
    this.finish('cancelled', 'client_cancelled');
  }

  private onTruncate(ev: any): void {
    const id = ev.event_id;
    if (typeof ev.item_id !== 'string') {
      this.error('missing_required_parameter', "Missing required parameter: 'item_id'.", id, 'item_id');
      return;
    }
    const item = this.items.get(ev.item_id);
    if (!item) {
      this.error('invalid_value', `Item with item_id not found: ${ev.item_id}`, id, 'item_id');
      return;
    }
    if (item.role !== 'assistant' || item.type !== 'message') {
      this.error('invalid_value', 'Only model output audio messages can be truncated', id, 'item_id');
      return;
    }
    if (ev.content_index !== 0) {
      this.error('invalid_value', `Invalid 'content_index': ${String(ev.content_index)}. The item has one audio content part (0).`, id, 'content_index');
      return;
    }
    const end = ev.audio_end_ms;
    if (typeof end !== 'number' || !Number.isInteger(end)) {
      this.error('invalid_type', `Invalid type for 'audio_end_ms': expected an integer, but got ${typeof end === 'number' ? 'a decimal' : typeof end} instead.`, id, 'audio_end_ms');
      return;
    }
    if (end < 0) {
      this.error('integer_below_min_value', `Invalid 'audio_end_ms': integer below minimum value. Expected a value >= 0, but got ${end} instead.`, id, 'audio_end_ms');
      return;
    }
    const itemMs = (item.audioSamples * 1000) / item.rate;
    if (end > itemMs) {
      this.error('invalid_value', `Audio content of ${Math.floor(itemMs)}ms is already shorter than ${end}ms`, id, 'audio_end_ms');
      return;
    }
    item.audioSamples = Math.floor((end * item.rate) / 1000);
    this.truncations.push({ item_id: item.id, content_index: 0, audio_end_ms: end, item_audio_ms: itemMs });
    this.sendEvent({ type: 'conversation.item.truncated', item_id: item.id, content_index: 0, audio_end_ms: end });
  }

  private onItemCreate(ev: any): void {
    const it = ev.item;
    if (typeof it !== 'object' || it === null || typeof it.type !== 'string') {
      this.error('missing_required_parameter', "Missing required parameter: 'item.type'.", ev.event_id, 'item.type');
      return;
    }
    if (it.type === 'function_call_output') {
      if (typeof it.call_id !== 'string' || typeof it.output !== 'string') {
        this.error('missing_required_parameter', "function_call_output needs string 'call_id' and 'output'.", ev.event_id, 'item.call_id');
        return;
      }
      const known = [...this.items.values()].some((x) => x.type === 'function_call' && x.callId === it.call_id);
      if (!known) {
        this.error('invalid_value', `Tool call ID '${it.call_id}' not found in conversation.`, ev.event_id, 'item.call_id');
        return;
      }
    }
    const itemId = typeof it.id === 'string' ? it.id : this.nextId('item');
    if (this.items.has(itemId)) {
      this.error('invalid_value', `Item with id '${itemId}' already exists.`, ev.event_id, 'item.id');
      return;
    }
    this.items.set(itemId, { id: itemId, type: it.type, role: it.role, audioSamples: 0, rate: 0, callId: it.call_id });
    const previous = this.lastItemId;
    this.lastItemId = itemId;
    const item = { ...it, id: itemId, object: 'realtime.item', status: 'completed' };
    this.sendEvent({ type: 'conversation.item.added', previous_item_id: previous, item });
    this.sendEvent({ type: 'conversation.item.done', previous_item_id: previous, item });
  }
}
