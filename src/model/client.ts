// One model session over a plain `ws` socket. Not the SDK's OpenAIRealtimeWS: that one decodes and
// JSON-parses every message, and the hot path here is audio deltas (tens of per second per call)
// that the bridge scans in WASM straight from the received bytes, and appends that the bridge
// builds in WASM memory and sends without ever making a JS string.
import { randomFillSync } from 'node:crypto';
import WebSocket from 'ws';
import {
  buildSessionUpdate,
  checkSessionFormats,
  type AudioFormatName,
  type ServerEvent,
  type SessionOptions,
  type SessionUpdatedEvent,
} from './protocol.js';

export const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
export const DEFAULT_MODEL = 'gpt-realtime';
export const DEFAULT_READY_TIMEOUT_MS = 5000;

/** What the bridge core sees of a model session. */
export interface ModelLink {
  /** Resolves once session.updated confirmed the asked formats; rejects on any failure before. */
  readonly ready: Promise<void>;
  /**
   * Sends a complete JSON text message (e.g. an append built in WASM memory) as a TEXT frame.
   * The bytes are copied once while masking, before this returns: the caller may reuse them.
   */
  sendRaw(bytes: Uint8Array): void;
  /** JSON.stringify path for the rare control events. */
  send(event: object): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
  /** Raw bytes of a response.output_audio.delta message, not parsed. Valid during the call only. */
  onAudioDelta: (msg: Uint8Array) => void;
  /** Every other server event, parsed (session.created/updated included). */
  onEvent: (ev: ServerEvent) => void;
  /** Exactly once, whatever ended the session; `reason` carries our own failure text if any. */
  onClose: (code: number, reason: string) => void;
}

export interface ModelConnectOptions {
  apiKey: string;
  /** Like the SDK's OPENAI_BASE_URL: https://host/v1 -> wss://host/v1/realtime?model=... */
  baseURL?: string;
  model?: string;
  session: SessionOptions;
  /** Test hook: send this instead of buildSessionUpdate(session); formats still checked against session.format. */
  sessionUpdate?: object;
  /** Bound on connect + session.updated. */
  readyTimeoutMs?: number;
  headers?: Record<string, string>;
}

export interface ModelLinkStats {
  audioDeltas: number;
  events: number;
  /** Messages that were not JSON; dropped. */
  parseErrors: number;
  /** Sends attempted while the socket was not open; dropped. */
  droppedSends: number;
}

/** BASE/realtime?model=MODEL with https -> wss and http -> ws. */
export function realtimeURL(baseURL: string = DEFAULT_BASE_URL, model: string = DEFAULT_MODEL): string {
  const url = new URL(baseURL.replace(/\/+$/, '') + '/realtime');
  if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new Error(`model base URL must be http(s) or ws(s): ${baseURL}`);
  }
  url.searchParams.set('model', model);
  return url.toString();
}

// The real server (and every GA fixture seen) puts "type" first; anything else takes the
// JSON.parse path below, which still routes deltas raw, so this is an optimisation only.
const DELTA_PREFIX = Buffer.from('{"type":"response.output_audio.delta"', 'latin1');
const DELTA_PREFIX_LEN = DELTA_PREFIX.length;

export function isAudioDeltaPrefix(buf: Buffer): boolean {
  return buf.length > DELTA_PREFIX_LEN && buf.compare(DELTA_PREFIX, 0, DELTA_PREFIX_LEN, 0, DELTA_PREFIX_LEN) === 0;
}

// ws skips masking (and then writes the caller's buffer itself, possibly later) when the random
// mask is all zero. sendRaw's bytes live in WASM scratch memory that is reused on the next frame,
// so the mask must never be zero: then ws always masks into a fresh buffer before send returns.
const maskPool = Buffer.alloc(4096);
let maskPos = maskPool.length;
function generateMask(mask: Buffer): void {
  if (maskPos === maskPool.length) {
    randomFillSync(maskPool);
    maskPos = 0;
  }
  mask[0] = maskPool[maskPos++];
  mask[1] = maskPool[maskPos++];
  mask[2] = maskPool[maskPos++];
  mask[3] = maskPool[maskPos++] | ((mask[0] | mask[1] | mask[2]) === 0 ? 1 : 0);
}

function closeReason(reason: string): string {
  // A close frame's reason is at most 123 bytes; ws throws beyond that.
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}

const noop = () => {};

export class ModelConnection implements ModelLink {
  readonly ready: Promise<void>;
  readonly url: string;
  readonly format: AudioFormatName;
  /** The session.updated that confirmed the session. */
  session: SessionUpdatedEvent | undefined;
  readonly stats: ModelLinkStats = { audioDeltas: 0, events: 0, parseErrors: 0, droppedSends: 0 };

  onAudioDelta: (msg: Uint8Array) => void = noop;
  onEvent: (ev: ServerEvent) => void = noop;
  onClose: (code: number, reason: string) => void = noop;

  private readonly ws: WebSocket;
  private settled = false;
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  private readyTimer: NodeJS.Timeout | undefined;
  private failure: string | undefined;
  private socketError: string | undefined;
  private closed = false;

  constructor(opts: ModelConnectOptions) {
    this.url = realtimeURL(opts.baseURL, opts.model);
    this.format = opts.session.format;
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Callers that only watch onClose must not get an unhandled rejection.
    this.ready.catch(noop);
    const timeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const sessionUpdate = opts.sessionUpdate ?? buildSessionUpdate({ model: opts.model, ...opts.session });

    this.ws = new WebSocket(this.url, {
      headers: { ...opts.headers, Authorization: `Bearer ${opts.apiKey}` },
      perMessageDeflate: false, // base64 audio barely compresses; deflate would only cost CPU
      skipUTF8Validation: true, // every message is either scanned as ASCII or JSON.parsed anyway
      handshakeTimeout: timeoutMs,
      generateMask,
    });
    this.readyTimer = setTimeout(
      () => this.fail(`model session not ready within ${timeoutMs} ms (no session.updated)`),
      timeoutMs,
    );

    this.ws.on('error', (err) => {
      this.socketError ??= err.message;
      this.fail(`model socket error: ${err.message}`);
    });
    this.ws.on('unexpected-response', (req, res) => {
      // Keep the HTTP status and the start of the body (OpenAI explains 401/403/429 there).
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 500) body += chunk;
      });
      const done = () => {
        this.fail(`model upgrade rejected: HTTP ${res.statusCode}${body ? ` ${body.slice(0, 500).trim()}` : ''}`);
        req.destroy();
      };
      res.on('end', done);
      res.on('error', done);
    });
    this.ws.on('open', () => {
      this.ws.send(JSON.stringify(sessionUpdate));
    });
    this.ws.on('message', this.handleMessage);
    this.ws.on('close', (code: number, reason: Buffer) => {
      this.closed = true;
      const why = this.failure ?? (reason.length ? reason.toString() : (this.socketError ?? ''));
      this.fail(`model socket closed (${code}${why ? `: ${why}` : ''})`);
      clearTimeout(this.readyTimer);
      try {
        this.onClose(code, why);
      } catch {
        // the owner's close handler failing must not take the process down
      }
    });
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  sendRaw(bytes: Uint8Array): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      this.stats.droppedSends++;
      return;
    }
    this.ws.send(bytes, { binary: false });
  }

  send(event: object): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      this.stats.droppedSends++;
      return;
    }
    this.ws.send(JSON.stringify(event));
  }

  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.fail(`closed by the bridge${reason ? `: ${reason}` : ''}`, false);
    if (this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
      return;
    }
    this.ws.close(code, closeReason(reason));
    this.terminateSoon();
  }

  private terminateSoon(): void {
    // A server that never answers the close frame would hold the socket for ws's 30 s.
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  /** Fatal before ready: reject ready, remember why, close. */
  private fail(message: string, closeSocket = true): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.readyTimer);
    this.failure = message;
    this.rejectReady(new Error(message));
    if (!closeSocket || this.closed) return;
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.close(1000, closeReason(message));
      this.terminateSoon();
    }
  }

  private handleMessage = (data: Buffer): void => {
    try {
      if (isAudioDeltaPrefix(data)) {
        this.stats.audioDeltas++;
        this.onAudioDelta(data);
        return;
      }
      let ev: ServerEvent;
      try {
        ev = JSON.parse(data.toString('utf8')) as ServerEvent;
      } catch {
        this.stats.parseErrors++;
        return;
      }
      if (typeof ev !== 'object' || ev === null) {
        this.stats.parseErrors++;
        return;
      }
      if ((ev as { type?: unknown }).type === 'response.output_audio.delta') {
        this.stats.audioDeltas++;
        this.onAudioDelta(data);
        return;
      }
      this.stats.events++;
      if (ev.type === 'session.updated') this.checkSession(ev);
      else if (ev.type === 'error' && !this.settled) {
        const e = ev.error ?? {};
        this.fail(`model rejected the session: ${e.message ?? 'error'}${e.code ? ` (${e.code})` : ''}`);
      }
      this.onEvent(ev);
    } catch (err) {
      // A throwing handler is a bug in one call; it must end that call, not the process.
      const msg = `model event handler threw: ${(err as Error)?.message ?? String(err)}`;
      this.failure ??= msg;
      this.close(1011, msg);
    }
  };

  private checkSession(ev: SessionUpdatedEvent): void {
    const problem = checkSessionFormats(ev, this.format);
    if (problem) {
      if (!this.settled) this.fail(problem);
      else {
        // A later session.updated that changes the formats would turn the rest of the call into noise.
        this.failure ??= problem;
        this.close(1000, problem);
      }
      return;
    }
    this.session = ev;
    if (!this.settled) {
      this.settled = true;
      clearTimeout(this.readyTimer);
      this.resolveReady();
    }
  }
}

/** Opens a model session; await `.ready` before sending audio. */
export function connectModel(opts: ModelConnectOptions): ModelConnection {
  return new ModelConnection(opts);
}
