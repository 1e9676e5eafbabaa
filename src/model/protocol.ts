// OpenAI Realtime (GA) event types the bridge uses, and the session.update it sends.
// Types come from the `openai` v6 SDK, whose realtime resources already describe the GA shape
// (session.type, audio.input/output.format, response.output_audio.*); re-exported here so the rest
// of the code depends on this file only.
import type * as RT from 'openai/resources/realtime/realtime';

// ---- client -> server -------------------------------------------------------------------------
export type SessionUpdateEvent = RT.SessionUpdateEvent;
export type InputAudioBufferAppendEvent = RT.InputAudioBufferAppendEvent;
export type InputAudioBufferCommitEvent = RT.InputAudioBufferCommitEvent;
export type InputAudioBufferClearEvent = RT.InputAudioBufferClearEvent;
export type ResponseCreateEvent = RT.ResponseCreateEvent;
export type ResponseCancelEvent = RT.ResponseCancelEvent;
export type ConversationItemTruncateEvent = RT.ConversationItemTruncateEvent;
export type ConversationItemCreateEvent = RT.ConversationItemCreateEvent;

/** The client events a bridge sends. */
export type ClientEvent =
  | SessionUpdateEvent
  | InputAudioBufferAppendEvent
  | InputAudioBufferCommitEvent
  | InputAudioBufferClearEvent
  | ResponseCreateEvent
  | ResponseCancelEvent
  | ConversationItemTruncateEvent
  | ConversationItemCreateEvent;

// ---- server -> client -------------------------------------------------------------------------
export type SessionCreatedEvent = RT.SessionCreatedEvent;
export type SessionUpdatedEvent = RT.SessionUpdatedEvent;
export type SpeechStartedEvent = RT.InputAudioBufferSpeechStartedEvent;
export type SpeechStoppedEvent = RT.InputAudioBufferSpeechStoppedEvent;
export type InputAudioBufferCommittedEvent = RT.InputAudioBufferCommittedEvent;
export type ResponseCreatedEvent = RT.ResponseCreatedEvent;
export type ResponseOutputItemAddedEvent = RT.ResponseOutputItemAddedEvent;
export type ResponseOutputItemDoneEvent = RT.ResponseOutputItemDoneEvent;
export type ResponseContentPartAddedEvent = RT.ResponseContentPartAddedEvent;
export type ResponseOutputAudioDeltaEvent = RT.ResponseAudioDeltaEvent;
export type ResponseOutputAudioDoneEvent = RT.ResponseAudioDoneEvent;
export type ResponseOutputAudioTranscriptDeltaEvent = RT.ResponseAudioTranscriptDeltaEvent;
export type ResponseDoneEvent = RT.ResponseDoneEvent;
export type ResponseFunctionCallArgumentsDoneEvent = RT.ResponseFunctionCallArgumentsDoneEvent;
export type ConversationItemTruncatedEvent = RT.ConversationItemTruncatedEvent;
export type ErrorEvent = RT.RealtimeErrorEvent;
export type RateLimitsUpdatedEvent = RT.RateLimitsUpdatedEvent;
export type RealtimeResponse = RT.RealtimeResponse;
export type ResponseStatus = NonNullable<RT.RealtimeResponse['status']>;

/**
 * Every event the server can send (the SDK's full GA union), so `switch (ev.type)` narrows.
 * The client hands `response.output_audio.delta` to `onAudioDelta` as raw bytes instead.
 */
export type ServerEvent = RT.RealtimeServerEvent;

// ---- session configuration ---------------------------------------------------------------------
export type RealtimeSession = RT.RealtimeSessionCreateRequest;
export type AudioFormat = RT.RealtimeAudioFormats;
export type FunctionTool = RT.RealtimeFunctionTool;
export type ServerVad = RT.RealtimeAudioInputTurnDetection.ServerVad;
export type SemanticVad = RT.RealtimeAudioInputTurnDetection.SemanticVad;
export type TurnDetection = RT.RealtimeAudioInputTurnDetection;

/** The two formats the bridge can run the model in (same format both ways). */
export type AudioFormatName = 'pcm24k' | 'pcmu';

export const AUDIO_DELTA_TYPE = 'response.output_audio.delta';

export const SERVER_VAD_DEFAULTS = {
  type: 'server_vad',
  threshold: 0.5,
  prefix_padding_ms: 300,
  silence_duration_ms: 500,
  create_response: true,
  interrupt_response: true,
} as const satisfies ServerVad;

export interface SessionOptions {
  format: AudioFormatName;
  model?: string;
  voice?: string;
  instructions?: string;
  /**
   * `undefined` -> server_vad with the GA defaults; a partial server_vad is merged over them;
   * semantic_vad is passed through; `null` turns detection off (client commits).
   */
  turnDetection?: Partial<ServerVad> | SemanticVad | null;
  tools?: FunctionTool[];
}

/** The GA format object for a format name (the same one in and out). */
export function formatObject(format: AudioFormatName): AudioFormat {
  return format === 'pcmu' ? { type: 'audio/pcmu' } : { type: 'audio/pcm', rate: 24000 };
}

function turnDetectionOf(td: SessionOptions['turnDetection']): TurnDetection | null {
  if (td === null) return null;
  if (td === undefined) return { ...SERVER_VAD_DEFAULTS };
  if (td.type === 'semantic_vad') return td;
  return { ...SERVER_VAD_DEFAULTS, ...td, type: 'server_vad' };
}

/** The GA session.update of PROTOCOLS.md section 2. */
export function buildSessionUpdate(opts: SessionOptions): SessionUpdateEvent {
  const session: RealtimeSession = {
    type: 'realtime',
    output_modalities: ['audio'],
    audio: {
      input: { format: formatObject(opts.format), turn_detection: turnDetectionOf(opts.turnDetection) },
      output: { format: formatObject(opts.format), ...(opts.voice ? { voice: opts.voice } : {}) },
    },
  };
  if (opts.model) session.model = opts.model;
  if (opts.instructions !== undefined) session.instructions = opts.instructions;
  if (opts.tools) session.tools = opts.tools;
  return { type: 'session.update', session };
}

function describeFormat(f: unknown): string {
  if (f === undefined) return 'missing';
  return JSON.stringify(f);
}

function formatMatches(f: unknown, expected: AudioFormatName): boolean {
  if (typeof f !== 'object' || f === null) return false;
  const o = f as { type?: unknown; rate?: unknown };
  if (expected === 'pcmu') return o.type === 'audio/pcmu';
  // GA servers report rate 24000; a missing rate can only mean 24 kHz (the sole PCM rate).
  return o.type === 'audio/pcm' && (o.rate === undefined || o.rate === 24000);
}

/**
 * null when the session.updated event confirms `expected` for input and output audio, else a
 * message saying what the server kept. The usual cause of a mismatch is a session.update with
 * beta field names (input_audio_format, ...), which GA servers ignore, keeping PCM 24 kHz; sending
 * mu-law into that session (or playing its PCM as mu-law) is noise, so the call must not start.
 */
export function checkSessionFormats(sessionUpdated: unknown, expected: AudioFormatName): string | null {
  const ev = sessionUpdated as { type?: unknown; session?: Record<string, unknown> } | null;
  if (!ev || typeof ev !== 'object' || ev.type !== 'session.updated') {
    return `expected a session.updated event, got ${ev && typeof ev === 'object' ? String(ev.type) : typeof ev}`;
  }
  const session = ev.session;
  if (!session || typeof session !== 'object') return 'session.updated carries no session object';
  const audio = session.audio as { input?: { format?: unknown }; output?: { format?: unknown } } | undefined;
  const inFmt = audio?.input?.format;
  const outFmt = audio?.output?.format;
  const want = JSON.stringify(formatObject(expected));
  const problems: string[] = [];
  if (!formatMatches(inFmt, expected)) problems.push(`input format is ${describeFormat(inFmt)}`);
  if (!formatMatches(outFmt, expected)) problems.push(`output format is ${describeFormat(outFmt)}`);
  if (problems.length === 0) return null;
  const beta = 'input_audio_format' in session || 'output_audio_format' in session;
  return (
    `model session audio format mismatch: asked for ${want} in and out, but ${problems.join(' and ')}` +
    (beta
      ? ' (the server reports beta field names: it does not speak the GA session shape)'
      : ' (a session.update the server did not understand keeps its default, PCM 24 kHz)')
  );
}
