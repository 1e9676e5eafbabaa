// Twilio Media Streams (bidirectional) message shapes, a strict validator for the messages that
// are not on the per-frame hot path, and serializers for what the server sends back.
//
// The hot path (inbound `media`, ~50/s per call) is scanned without JSON.parse in parse.ts; this
// module is for everything else (connected/start/dtmf/mark/stop) and for tools and tests (the
// call simulator validates the server's messages with parseServerMessage).
//
// Validation follows PROTOCOLS.md §1: sequenceNumber, media.chunk and media.timestamp are strings
// of digits; mediaFormat.sampleRate and channels are numbers. SIDs are only required to be
// non-empty strings (older streams used UUIDs). Unknown extra fields are accepted so that Twilio
// adding a field never breaks a call; missing or mistyped known fields are errors.

// ---------------------------------------------------------------------------------------------
// Messages Twilio sends
// ---------------------------------------------------------------------------------------------

export interface TwilioConnected {
  event: 'connected';
  protocol: string;
  version: string;
}

export interface TwilioMediaFormat {
  encoding: string;
  sampleRate: number;
  channels: number;
}

export interface TwilioStart {
  event: 'start';
  sequenceNumber: string;
  streamSid: string;
  start: {
    accountSid: string;
    streamSid: string;
    callSid: string;
    tracks: string[];
    /** `<Parameter>` values from the TwiML; `{}` when Twilio sent none or omitted the field. */
    customParameters: Record<string, string>;
    mediaFormat: TwilioMediaFormat;
  };
}

export interface TwilioMedia {
  event: 'media';
  sequenceNumber: string;
  streamSid: string;
  media: {
    track: string;
    chunk: string;
    timestamp: string;
    /** base64 of mu-law 8 kHz bytes (160 per message from Twilio). */
    payload: string;
  };
}

export interface TwilioDtmf {
  event: 'dtmf';
  sequenceNumber: string;
  streamSid: string;
  dtmf: { track: string; digit: string };
}

export interface TwilioMark {
  event: 'mark';
  sequenceNumber: string;
  streamSid: string;
  mark: { name: string };
}

export interface TwilioStop {
  event: 'stop';
  sequenceNumber: string;
  streamSid: string;
  stop: { accountSid: string; callSid: string };
}

export type TwilioMessage =
  | TwilioConnected
  | TwilioStart
  | TwilioMedia
  | TwilioDtmf
  | TwilioMark
  | TwilioStop;

export type TwilioEvent = TwilioMessage['event'];

// ---------------------------------------------------------------------------------------------
// Messages the server sends
// ---------------------------------------------------------------------------------------------

export interface ServerMedia {
  event: 'media';
  streamSid: string;
  media: { payload: string };
}

export interface ServerMark {
  event: 'mark';
  streamSid: string;
  mark: { name: string };
}

export interface ServerClear {
  event: 'clear';
  streamSid: string;
}

export type ServerMessage = ServerMedia | ServerMark | ServerClear;

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

/** Thrown by the serializers on input that would produce a message Twilio rejects. */
export class TwilioProtocolError extends Error {
  override name = 'TwilioProtocolError';
}

// ---------------------------------------------------------------------------------------------
// Field checks. Each returns an error string (path: problem) or undefined.
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

const DIGITS = /^[0-9]+$/;
// Standard alphabet with padding, as Twilio sends; whitespace is not allowed inside a JSON payload.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DTMF_DIGIT = /^[0-9*#A-Da-d]$/;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Fail {
  constructor(readonly error: string) {}
}

function obj(parent: Obj, key: string, path: string): Obj {
  const v = parent[key];
  if (!isObj(v)) throw new Fail(`${path}: expected an object, got ${v === undefined ? 'nothing' : describe(v)}`);
  return v;
}

function str(parent: Obj, key: string, path: string, opts: { nonEmpty?: boolean } = {}): string {
  const v = parent[key];
  if (typeof v !== 'string') throw new Fail(`${path}: expected a string, got ${v === undefined ? 'nothing' : describe(v)}`);
  if (opts.nonEmpty && v.length === 0) throw new Fail(`${path}: must not be empty`);
  return v;
}

function digits(parent: Obj, key: string, path: string): string {
  const v = parent[key];
  if (typeof v !== 'string' || !DIGITS.test(v)) {
    throw new Fail(`${path}: expected a string of digits, got ${v === undefined ? 'nothing' : describe(v)}`);
  }
  return v;
}

function positiveInt(parent: Obj, key: string, path: string): number {
  const v = parent[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new Fail(`${path}: expected a positive integer number, got ${v === undefined ? 'nothing' : describe(v)}`);
  }
  return v;
}

function base64(parent: Obj, key: string, path: string, opts: { nonEmpty?: boolean } = {}): string {
  const v = str(parent, key, path);
  if (opts.nonEmpty && v.length === 0) throw new Fail(`${path}: must not be empty`);
  if (!BASE64.test(v)) throw new Fail(`${path}: not valid base64 (standard alphabet, padded)`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Twilio -> server
// ---------------------------------------------------------------------------------------------

function parseJsonObject(text: string): Obj {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Fail(`invalid JSON: ${(e as Error).message}`);
  }
  if (!isObj(v)) throw new Fail(`expected a JSON object, got ${describe(v)}`);
  return v;
}

function validateTwilio(m: Obj): TwilioMessage {
  const event = m.event;
  if (typeof event !== 'string') throw new Fail(`event: expected a string, got ${event === undefined ? 'nothing' : describe(event)}`);
  switch (event) {
    case 'connected':
      return { event, protocol: str(m, 'protocol', 'protocol'), version: str(m, 'version', 'version') };
    case 'start': {
      const sequenceNumber = digits(m, 'sequenceNumber', 'sequenceNumber');
      const streamSid = str(m, 'streamSid', 'streamSid', { nonEmpty: true });
      const s = obj(m, 'start', 'start');
      const innerSid = str(s, 'streamSid', 'start.streamSid', { nonEmpty: true });
      if (innerSid !== streamSid) throw new Fail(`start.streamSid ${JSON.stringify(innerSid)} differs from streamSid ${JSON.stringify(streamSid)}`);
      const tracksV = s.tracks;
      if (!Array.isArray(tracksV) || tracksV.some((t) => typeof t !== 'string')) {
        throw new Fail(`start.tracks: expected an array of strings, got ${tracksV === undefined ? 'nothing' : describe(tracksV)}`);
      }
      let customParameters: Record<string, string> = {};
      if (s.customParameters !== undefined) {
        const cp = obj(s, 'customParameters', 'start.customParameters');
        customParameters = {};
        for (const k of Object.keys(cp)) customParameters[k] = str(cp, k, `start.customParameters.${k}`);
      }
      const mf = obj(s, 'mediaFormat', 'start.mediaFormat');
      return {
        event,
        sequenceNumber,
        streamSid,
        start: {
          accountSid: str(s, 'accountSid', 'start.accountSid', { nonEmpty: true }),
          streamSid: innerSid,
          callSid: str(s, 'callSid', 'start.callSid', { nonEmpty: true }),
          tracks: tracksV as string[],
          customParameters,
          mediaFormat: {
            encoding: str(mf, 'encoding', 'start.mediaFormat.encoding', { nonEmpty: true }),
            sampleRate: positiveInt(mf, 'sampleRate', 'start.mediaFormat.sampleRate'),
            channels: positiveInt(mf, 'channels', 'start.mediaFormat.channels'),
          },
        },
      };
    }
    case 'media': {
      const sequenceNumber = digits(m, 'sequenceNumber', 'sequenceNumber');
      const streamSid = str(m, 'streamSid', 'streamSid', { nonEmpty: true });
      const md = obj(m, 'media', 'media');
      return {
        event,
        sequenceNumber,
        streamSid,
        media: {
          track: str(md, 'track', 'media.track'),
          chunk: digits(md, 'chunk', 'media.chunk'),
          timestamp: digits(md, 'timestamp', 'media.timestamp'),
          payload: base64(md, 'payload', 'media.payload'),
        },
      };
    }
    case 'dtmf': {
      const sequenceNumber = digits(m, 'sequenceNumber', 'sequenceNumber');
      const streamSid = str(m, 'streamSid', 'streamSid', { nonEmpty: true });
      const d = obj(m, 'dtmf', 'dtmf');
      const digit = str(d, 'digit', 'dtmf.digit');
      if (!DTMF_DIGIT.test(digit)) throw new Fail(`dtmf.digit: expected one of 0-9 * # A-D, got ${describe(digit)}`);
      return { event, sequenceNumber, streamSid, dtmf: { track: str(d, 'track', 'dtmf.track'), digit } };
    }
    case 'mark': {
      const sequenceNumber = digits(m, 'sequenceNumber', 'sequenceNumber');
      const streamSid = str(m, 'streamSid', 'streamSid', { nonEmpty: true });
      const mk = obj(m, 'mark', 'mark');
      return { event, sequenceNumber, streamSid, mark: { name: str(mk, 'name', 'mark.name') } };
    }
    case 'stop': {
      const sequenceNumber = digits(m, 'sequenceNumber', 'sequenceNumber');
      const streamSid = str(m, 'streamSid', 'streamSid', { nonEmpty: true });
      const st = obj(m, 'stop', 'stop');
      return {
        event,
        sequenceNumber,
        streamSid,
        stop: {
          accountSid: str(st, 'accountSid', 'stop.accountSid', { nonEmpty: true }),
          callSid: str(st, 'callSid', 'stop.callSid', { nonEmpty: true }),
        },
      };
    }
    default:
      throw new Fail(`unknown event ${JSON.stringify(event)}`);
  }
}

/**
 * Parses and strictly validates one text frame from Twilio. Never throws: a malformed frame is an
 * `{ok:false, error}` whose message names the offending field, e.g.
 * `media.timestamp: expected a string of digits, got number 52`.
 */
export function parseControlMessage(text: string): ParseResult<TwilioMessage> {
  try {
    return { ok: true, message: validateTwilio(parseJsonObject(text)) };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, error: e.error };
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Server -> Twilio
// ---------------------------------------------------------------------------------------------

function validateServer(m: Obj): ServerMessage {
  const event = m.event;
  if (typeof event !== 'string') throw new Fail(`event: expected a string, got ${event === undefined ? 'nothing' : describe(event)}`);
  const streamSid = (): string => str(m, 'streamSid', 'streamSid', { nonEmpty: true });
  switch (event) {
    case 'media': {
      const sid = streamSid();
      const md = obj(m, 'media', 'media');
      return { event, streamSid: sid, media: { payload: base64(md, 'payload', 'media.payload', { nonEmpty: true }) } };
    }
    case 'mark': {
      const sid = streamSid();
      const mk = obj(m, 'mark', 'mark');
      return { event, streamSid: sid, mark: { name: str(mk, 'name', 'mark.name', { nonEmpty: true }) } };
    }
    case 'clear':
      return { event, streamSid: streamSid() };
    default:
      throw new Fail(`unknown event ${JSON.stringify(event)} (a server may send media, mark, clear)`);
  }
}

/** Validates a text frame a server sends to Twilio (used by the simulator and tests). */
export function parseServerMessage(text: string): ParseResult<ServerMessage> {
  try {
    return { ok: true, message: validateServer(parseJsonObject(text)) };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, error: e.error };
    throw e;
  }
}

function requireSid(streamSid: string): void {
  if (typeof streamSid !== 'string' || streamSid.length === 0) throw new TwilioProtocolError('streamSid must be a non-empty string');
}

/** `{"event":"mark","streamSid":..,"mark":{"name":..}}`. Names are JSON-escaped, so any text is safe. */
export function serializeMark(streamSid: string, name: string): string {
  requireSid(streamSid);
  if (typeof name !== 'string' || name.length === 0) throw new TwilioProtocolError('mark name must be a non-empty string');
  return JSON.stringify({ event: 'mark', streamSid, mark: { name } });
}

/** `{"event":"clear","streamSid":..}`: Twilio empties its playback buffer and echoes pending marks. */
export function serializeClear(streamSid: string): string {
  requireSid(streamSid);
  return JSON.stringify({ event: 'clear', streamSid });
}

/**
 * `{"event":"media","streamSid":..,"media":{"payload":..}}` from an already base64 payload.
 * Not for the hot path (the bridge builds these bytes in WASM); for tools and tests.
 */
export function serializeMedia(streamSid: string, payloadBase64: string): string {
  requireSid(streamSid);
  if (!BASE64.test(payloadBase64) || payloadBase64.length === 0) throw new TwilioProtocolError('media payload must be non-empty padded base64');
  return JSON.stringify({ event: 'media', streamSid, media: { payload: payloadBase64 } });
}
