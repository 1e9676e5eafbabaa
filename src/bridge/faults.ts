// What the bridge does about hostile input, slow sockets and model errors, as counters. The
// general bridge metrics (src/metrics.ts) are the bridge's narrow BridgeMetrics; these are the
// fault-policy counters, registered in the same per-thread prom-client registry so /metrics and
// the cluster's aggregation (which merges whole registries) carry them with no extra wiring.
import { Counter, type Registry } from 'prom-client';

/** Why the bridge closed a stream because of what Twilio's side sent. */
export type StreamCloseReason = 'flood' | 'too_large' | 'invalid_utf8';

/** What the bridge did about a model `error` event (see bridge/model-errors.ts). */
export type ModelErrorAction = 'ignored' | 'logged' | 'ended_call';

export interface FaultMetrics {
  /** Caller audio never sent to the model (model socket backed up, or pre-ready queue full). */
  callerAudioDropped(seconds: number): void;
  /** Bot audio dropped from the outbound queue, oldest first, because it was full. */
  botAudioDropped(seconds: number): void;
  /** Outbound pacing paused: the Twilio socket's send buffer was over OUTBOUND_PAUSE_BYTES. */
  carrierPaused(): void;
  /** A stream the bridge closed because of the input it received. */
  streamClosed(reason: StreamCloseReason): void;
  modelErrorHandled(action: ModelErrorAction): void;
  /** A response.done, by status (completed | cancelled | failed | incomplete | other). */
  modelResponse(status: string): void;
}

export const NOOP_FAULT_METRICS: FaultMetrics = Object.freeze({
  callerAudioDropped() {},
  botAudioDropped() {},
  carrierPaused() {},
  streamClosed() {},
  modelErrorHandled() {},
  modelResponse() {},
});

const STATUSES = ['completed', 'cancelled', 'failed', 'incomplete', 'other'];
const CLOSE_REASONS: StreamCloseReason[] = ['flood', 'too_large', 'invalid_utf8'];
const ACTIONS: ModelErrorAction[] = ['ignored', 'logged', 'ended_call'];

const byRegistry = new WeakMap<Registry, FaultMetrics>();

/** The fault counters in `registry` (created once per registry; later calls share them). */
export function promFaultMetrics(registry: Registry): FaultMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const p = 'voicebridge_';
  const callerDropped = new Counter({
    name: `${p}caller_audio_dropped_seconds_total`, registers,
    help: 'Caller audio not sent to the model: its socket\'s send buffer was over MODEL_MAX_BUFFERED_BYTES (or the pre-ready queue was full).',
  });
  const botDropped = new Counter({
    name: `${p}bot_audio_dropped_seconds_total`, registers,
    help: 'Bot audio dropped (oldest first) from a full outbound queue, e.g. while Twilio\'s socket was backed up.',
  });
  const paused = new Counter({
    name: `${p}outbound_pauses_total`, registers,
    help: 'Times bot audio pacing paused because the Twilio socket\'s send buffer was over OUTBOUND_PAUSE_BYTES.',
  });
  const closes = new Counter({
    name: `${p}stream_closes_total`, registers, labelNames: ['reason'],
    help: 'Streams closed because of what the Twilio side sent (flood: 1008; too_large: over MAX_MESSAGE_BYTES, invalid_utf8: dropped by uWS).',
  });
  for (const r of CLOSE_REASONS) closes.inc({ reason: r }, 0);
  const actions = new Counter({
    name: `${p}model_error_actions_total`, registers, labelNames: ['action'],
    help: 'Model error events by what the bridge did: ignored (harmless), logged (call goes on), ended_call.',
  });
  for (const a of ACTIONS) actions.inc({ action: a }, 0);
  const responses = new Counter({
    name: `${p}model_responses_total`, registers, labelNames: ['status'],
    help: 'Model responses by final status (response.done).',
  });
  for (const s of STATUSES) responses.inc({ status: s }, 0);
  const m: FaultMetrics = {
    callerAudioDropped: (s) => { if (s > 0) callerDropped.inc(s); },
    botAudioDropped: (s) => { if (s > 0) botDropped.inc(s); },
    carrierPaused: () => paused.inc(),
    streamClosed: (reason) => closes.inc({ reason }),
    modelErrorHandled: (action) => actions.inc({ action }),
    modelResponse: (status) => responses.inc({ status: STATUSES.includes(status) ? status : 'other' }),
  };
  byRegistry.set(registry, m);
  return m;
}
