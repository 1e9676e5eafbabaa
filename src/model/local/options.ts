import type { LocalSession } from './session.js';

/**
 * How the local model behaves. Read live by every session: a test may change a field between
 * steps (e.g. set `responseAudio` before the next turn).
 */
export interface LocalModelOptions {
  host?: string;
  /** 0 (default): an ephemeral port. */
  port?: number;
  /** When set, upgrades without `Authorization: Bearer <apiKey>` get HTTP 401. */
  apiKey?: string;

  // ---- responses ----
  /** Audio per output_audio.delta, ms. Default 100. */
  deltaMs?: number;
  /** Delta pacing as a multiple of real time. Default 4; Infinity sends as fast as the loop turns. */
  speed?: number;
  /** Delay from response.created to the first delta (or the function call), ms. Default 0. */
  firstAudioDelayMs?: number;
  /** Audio for a response.create with no caller utterance to answer: 'tone' (default, 800 ms sweep), 'none', or 24 kHz PCM16. */
  greeting?: 'tone' | 'none' | Int16Array;
  /** 24 kHz PCM16 that every response plays instead of echoing the caller's last utterance. */
  responseAudio?: Int16Array;
  /** Transcript text spread word by word over output_audio_transcript.delta events. */
  transcript?: string;
  /** Answer each caller turn with this function call first; the response.create after its output plays the echo. */
  functionCall?: { name: string; arguments?: string | object };
  /** Send rate_limits.updated after each response.created (true: a default table). */
  rateLimits?: boolean | Array<{ name: string; limit: number; remaining: number; reset_seconds: number }>;
  /** Put "type" last in delta messages (exercises the client's parse fallback). */
  deltaTypeLast?: boolean;

  // ---- session.update ----
  /** Beta/unknown session fields: 'ignore' (default, as PROTOCOLS.md describes) or 'error' (Unknown parameter). */
  unknownSessionFields?: 'ignore' | 'error';
  /** Never answer session.update with session.updated. */
  noSessionUpdated?: boolean;

  // ---- VAD ----
  /** RMS threshold (of 32768) for the energy VAD; default 2000 x the session's threshold (1000 at 0.5). */
  vadRms?: number;

  // ---- faults ----
  /** HTTP status for every upgrade (e.g. 401, 429, 500). */
  rejectUpgrade?: number;
  /** Answer the Nth client event (1-based, session.update included) with an error instead of handling it. */
  errorAt?: { event: number; code?: string; message?: string; errorType?: string; close?: boolean };
  /** A response ends with status 'failed' after this many deltas. */
  failAfterDeltas?: number;
  /** Drop each socket this long after it opened. */
  dropAfterMs?: number;
  /** Drop the socket after this many deltas in the session. */
  dropAfterDeltas?: number;
  /** How to drop: a close frame with this code, or (default) a TCP reset, which the client sees as 1006. */
  dropCode?: number;

  /**
   * Keep the test record: events, sent, input() audio, every response, closed sessions (default
   * true). Off for a long-running demo server, whose memory must not grow with traffic.
   */
  record?: boolean;
  onSession?: (session: LocalSession) => void;
}
