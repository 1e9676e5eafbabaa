// What a model `error` event means for the call. The Realtime API reports both harmless races
// and the end of the session through the same event; the bridge decides per code:
//   ignore    a race the bridge expects (cancelling a response that just finished): debug log.
//   continue  the request failed but the session lives (rate limit, a server hiccup on one
//             response, a bad truncate): warn log + metric, the call goes on. The model keeps
//             its conversation; the caller at worst hears no answer to one turn.
//   end_call  the session cannot serve the call any more (expired, quota, key revoked): error
//             log, the Twilio stream is closed (1011) so the TwiML after </Connect> runs rather
//             than the caller sitting on a line that will never answer.
// Unknown codes continue: ending a live call on an error we do not understand is the worse
// mistake, and a session that really is dead closes its socket, which ends the call anyway.

export type ModelErrorPolicy = 'ignore' | 'continue' | 'end_call';

export interface ModelErrorLike {
  type?: unknown;
  code?: unknown;
  message?: unknown;
}

/** Races with the model's own turn-taking; nothing went wrong. */
export const IGNORED_MODEL_ERRORS: ReadonlySet<string> = new Set([
  'response_cancel_not_active',
  'conversation_already_has_active_response',
  'input_audio_buffer_commit_empty',
]);

/** The session is over or can no longer answer. */
export const FATAL_MODEL_ERRORS: ReadonlySet<string> = new Set([
  'session_expired',
  'insufficient_quota',
  'invalid_api_key',
  'account_deactivated',
]);

export function modelErrorPolicy(error: ModelErrorLike | null | undefined): ModelErrorPolicy {
  const code = typeof error?.code === 'string' ? error.code : '';
  const type = typeof error?.type === 'string' ? error.type : '';
  if (IGNORED_MODEL_ERRORS.has(code)) return 'ignore';
  // `session_*` codes (session_expired, ...) and authentication failures end the session.
  if (FATAL_MODEL_ERRORS.has(code) || code.startsWith('session_') || type === 'authentication_error') return 'end_call';
  return 'continue';
}
