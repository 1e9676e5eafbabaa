// Environment -> validated configuration. One table: every variable, its default and its check,
// so the README's table and the code cannot drift (the README is generated from `describeConfig`).
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { ModelAudioFormat } from './dsp/call.js';

export interface Config {
  port: number;
  host: string;
  /** Unset: the embedded local model is started and used. */
  openaiApiKey: string | undefined;
  openaiBaseUrl: string;
  openaiModel: string;
  voice: string;
  instructions: string;
  greeting: string | undefined;
  publicUrl: string | undefined;
  audioFormat: ModelAudioFormat;
  twilioAuthToken: string | undefined;
  /** ALLOW_UNSIGNED: run with a real model key but no TWILIO_AUTH_TOKEN (insecure; dev only). */
  allowUnsigned: boolean;
  /** Extra `<Parameter>`s put in the TwiML for every call. */
  streamParameters: Record<string, string>;
  playbackLeadMs: number;
  markIntervalMs: number;
  echoTailMs: number;
  bargeIn: boolean;
  vadThresholdDb: number;
  vadMinSpeechMs: number;
  vadHangoverMs: number;
  /** Echo gate: threshold while bot audio may echo = loudest recent bot frame minus this. */
  echoMarginDb: number;
  vadBotMinSpeechMs: number;
  modelConnectTimeoutMs: number;
  startTimeoutMs: number;
  queueSeconds: number;
  maxMessageBytes: number;
  /** Inbound messages per second a stream may sustain; 0: no cap. */
  maxMessagesPerSecond: number;
  /** Caller audio is dropped while the model socket's send buffer holds more than this. */
  modelMaxBufferedBytes: number;
  /** Bot audio pacing pauses while the Twilio socket's send buffer holds more than this. */
  outboundPauseBytes: number;
  logLevel: string;
  /** Worker threads; 0: the bridge runs in the main thread. */
  workers: number;
  drainSeconds: number;
  maxCalls: number;
  upgradeRatePerMin: number;
  upgradeBurst: number;
  wsIdleTimeoutS: number;
  wsMaxBackpressureBytes: number;
  clientIpHeader: string | undefined;
}

type Env = Record<string, string | undefined>;

interface Entry {
  env: string;
  default: string;
  doc: string;
}

export const CONFIG_TABLE: Entry[] = [
  { env: 'PORT', default: '5050', doc: 'HTTP/WebSocket port (same as the Twilio sample).' },
  { env: 'HOST', default: '0.0.0.0', doc: 'Address to listen on.' },
  { env: 'OPENAI_API_KEY', default: '(unset)', doc: 'OpenAI key. Unset: the embedded local model is started in-process and used.' },
  { env: 'OPENAI_BASE_URL', default: 'https://api.openai.com/v1', doc: 'As in the openai SDK. Realtime socket at BASE/realtime?model=; https -> wss, http -> ws.' },
  { env: 'OPENAI_MODEL', default: 'gpt-realtime', doc: 'Realtime model name.' },
  { env: 'VOICE', default: 'marin', doc: 'Model voice.' },
  { env: 'SYSTEM_MESSAGE', default: '(a short helpful-assistant prompt)', doc: 'Instructions text (the sample\'s name for it).' },
  { env: 'INSTRUCTIONS_FILE', default: '(unset)', doc: 'Read the instructions from this file instead.' },
  { env: 'GREETING', default: '(unset)', doc: 'If set, the bot speaks first, asked to say this.' },
  { env: 'PUBLIC_URL', default: '(from Host header)', doc: 'Public https origin behind a proxy/tunnel; the Stream URL and signatures use it.' },
  { env: 'AUDIO_FORMAT', default: 'pcm24k', doc: 'pcm24k: mu-law decoded and resampled to 24 kHz PCM16. pcmu: mu-law passed through to the model.' },
  { env: 'TWILIO_AUTH_TOKEN', default: '(unset)', doc: 'Checks X-Twilio-Signature on /incoming-call and the WebSocket upgrade. Required with OPENAI_API_KEY: without it `start` refuses to run (exit code 2) unless ALLOW_UNSIGNED is set.' },
  { env: 'ALLOW_UNSIGNED', default: 'off', doc: 'Insecure, for development only: run with OPENAI_API_KEY but no TWILIO_AUTH_TOKEN (anyone who reaches the server can open model sessions on your key). Logged loudly at start and once per call. Not needed with the local model.' },
  { env: 'STREAM_PARAMETERS', default: '(none)', doc: 'Extra <Parameter>s for every call: name=value,name=value.' },
  { env: 'PLAYBACK_LEAD_MS', default: '80', doc: 'Bot audio kept buffered at Twilio ahead of playback; what a barge-in has to cut.' },
  { env: 'MARK_INTERVAL_MS', default: '200', doc: 'A mark every this much bot audio, to learn what the caller heard (each comes back as an inbound message). Between marks the truncation point is the pacer\'s play clock, bounded by the marks.' },
  { env: 'ECHO_TAIL_MS', default: '400', doc: 'Echo gate window: how long after a bot frame played its echo may still arrive.' },
  { env: 'BARGE_IN', default: 'on', doc: 'Interrupt the bot when the caller starts talking (on/off).' },
  { env: 'VAD_THRESHOLD_DB', default: '8', doc: 'Onset threshold above the adaptive noise floor.' },
  { env: 'VAD_MIN_SPEECH_MS', default: '20', doc: 'Speech needed before onset is declared.' },
  { env: 'VAD_HANGOVER_MS', default: '300', doc: 'Speech state held after energy drops.' },
  { env: 'ECHO_MARGIN_DB', default: '8', doc: 'Echo gate: while bot audio played within ECHO_TAIL_MS, onset needs the caller louder than the loudest recent bot frame minus this (an assumed echo return loss > this).' },
  { env: 'VAD_BOT_MIN_SPEECH_MS', default: '20', doc: 'Confirmation needed while bot audio may echo back.' },
  { env: 'MODEL_CONNECT_TIMEOUT_MS', default: '5000', doc: 'Longest wait for the model session to be ready; then the call ends cleanly.' },
  { env: 'START_TIMEOUT_MS', default: '10000', doc: 'Longest wait for Twilio\'s start message after the socket opens.' },
  { env: 'QUEUE_SECONDS', default: '5', doc: 'Outbound bot audio queued per call (8000 bytes a second, in WASM memory) before it is sent ahead to Twilio: over half full, the surplus goes to Twilio\'s own buffer at once, so a longer answer loses nothing; only while the Twilio socket is backed up (OUTBOUND_PAUSE_BYTES) does this bound what waits.' },
  { env: 'MAX_MESSAGE_BYTES', default: '1048576', doc: 'Largest WebSocket message accepted from Twilio (a media message is ~300 bytes). A larger one drops the connection (uWebSockets.js sends no close frame: the peer sees 1006); counted as a bad message.' },
  { env: 'MAX_MESSAGES_PER_S', default: '200', doc: 'Inbound messages per second one stream may sustain (Twilio sends ~60); a token bucket holding 2 s of it, so a network stall\'s backlog passes. Over it the stream is closed with 1008 "message rate exceeded". 0: no cap.' },
  { env: 'MODEL_MAX_BUFFERED_BYTES', default: '1048576', doc: 'While more than this waits in the model socket\'s send buffer (~16 s of pcm24k audio), new caller audio is dropped, counted and logged instead of queued without bound.' },
  { env: 'OUTBOUND_PAUSE_BYTES', default: '65536', doc: 'While more than this waits in a Twilio socket\'s send buffer (~3 s of media messages), bot audio is not sent; it waits in the QUEUE_SECONDS queue, whose oldest audio is dropped (counted) once full. Below WS_MAX_BACKPRESSURE_BYTES.' },
  { env: 'LOG_LEVEL', default: 'info', doc: 'pino log level.' },
  { env: 'WORKERS', default: '(os.availableParallelism())', doc: 'Bridge worker threads sharing the port (own uWS app and WASM each). 0: one bridge in the main thread. In containers set it to the CPU limit: the default counts the host\'s CPUs.' },
  { env: 'DRAIN_SECONDS', default: '30', doc: 'On SIGTERM: not ready and no new calls at once; active calls continue up to this long, then end cleanly ("shutdown"); exit 0. Keep the pod\'s terminationGracePeriodSeconds above it.' },
  { env: 'MAX_CALLS', default: '200', doc: 'Concurrent calls per process (all worker threads); further stream upgrades get 503 "at capacity" and /readyz fails. 0: no cap.' },
  { env: 'UPGRADE_RATE_PER_MIN', default: '120', doc: 'Stream upgrade attempts per minute per client address (token bucket); over it: 429 with Retry-After. 0: off. Twilio connects from few addresses: size for the whole call setup rate.' },
  { env: 'UPGRADE_BURST', default: '30', doc: 'Upgrade attempts one address may make at once before UPGRADE_RATE_PER_MIN applies.' },
  { env: 'WS_IDLE_TIMEOUT_S', default: '20', doc: 'Close a media stream after this many seconds without a message (Twilio sends 50 a second). 0 (off) or 8..960.' },
  { env: 'WS_MAX_BACKPRESSURE_BYTES', default: '1048576', doc: 'Bytes queued to a slow Twilio socket before further sends are dropped (and counted).' },
  { env: 'CLIENT_IP_HEADER', default: '(unset)', doc: 'Header a trusted proxy sets to the client address (e.g. x-forwarded-for; its last entry is used) for the upgrade rate limit. Unset: the socket address.' },
];

const DEFAULT_INSTRUCTIONS =
  'You are a helpful and friendly voice assistant on a phone call. Keep answers short and natural.';

export class ConfigError extends Error {}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  const v = Number(raw);
  if (v < min || v > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${v}`);
  return v;
}

function num(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new ConfigError(`${name} must be a number between ${min} and ${max}, got "${raw}"`);
  }
  return v;
}

function flag(env: Env, name: string, def: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const v = raw.trim().toLowerCase();
  if (['1', 'on', 'true', 'yes'].includes(v)) return true;
  if (['0', 'off', 'false', 'no'].includes(v)) return false;
  throw new ConfigError(`${name} must be on or off, got "${raw}"`);
}

function url(env: Env, name: string, def: string | undefined, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a URL: "${raw}"`);
  }
  if (!protocols.includes(u.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got "${raw}"`);
  }
  return raw.replace(/\/+$/, '');
}

function parameters(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const pair of raw.split(',')) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new ConfigError(`STREAM_PARAMETERS entries must be name=value, got "${pair}"`);
    out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return out;
}

export function loadConfig(env: Env = process.env): Config {
  const format = env.AUDIO_FORMAT || 'pcm24k';
  if (format !== 'pcm24k' && format !== 'pcmu') {
    throw new ConfigError(`AUDIO_FORMAT must be pcm24k or pcmu, got "${format}"`);
  }
  const bargeIn = (env.BARGE_IN || 'on').toLowerCase();
  if (!['on', 'off', 'true', 'false', '1', '0'].includes(bargeIn)) {
    throw new ConfigError(`BARGE_IN must be on or off, got "${env.BARGE_IN}"`);
  }
  const wsIdleTimeoutS = int(env, 'WS_IDLE_TIMEOUT_S', 20, 0, 960);
  if (wsIdleTimeoutS !== 0 && wsIdleTimeoutS < 8) {
    throw new ConfigError(`WS_IDLE_TIMEOUT_S must be 0 (off) or between 8 and 960, got ${wsIdleTimeoutS}`);
  }
  const allowUnsigned = flag(env, 'ALLOW_UNSIGNED', false);
  const clientIpHeader = env.CLIENT_IP_HEADER?.trim().toLowerCase() || undefined;
  if (clientIpHeader !== undefined && !/^[a-z0-9-]+$/.test(clientIpHeader)) {
    throw new ConfigError(`CLIENT_IP_HEADER must be a header name, got "${env.CLIENT_IP_HEADER}"`);
  }
  const wsMaxBackpressureBytes = int(env, 'WS_MAX_BACKPRESSURE_BYTES', 1 << 20, 1024, 1 << 30);
  const outboundPauseBytes = int(env, 'OUTBOUND_PAUSE_BYTES', 64 * 1024, 1024, 1 << 30);
  if (outboundPauseBytes >= wsMaxBackpressureBytes) {
    throw new ConfigError(`OUTBOUND_PAUSE_BYTES (${outboundPauseBytes}) must be below WS_MAX_BACKPRESSURE_BYTES (${wsMaxBackpressureBytes}): past that uWS drops frames instead`);
  }
  let instructions = env.SYSTEM_MESSAGE || DEFAULT_INSTRUCTIONS;
  if (env.INSTRUCTIONS_FILE) {
    try {
      instructions = readFileSync(env.INSTRUCTIONS_FILE, 'utf8');
    } catch (e) {
      throw new ConfigError(`INSTRUCTIONS_FILE cannot be read: ${(e as Error).message}`);
    }
  }
  return {
    port: int(env, 'PORT', 5050, 0, 65535),
    host: env.HOST || '0.0.0.0',
    openaiApiKey: env.OPENAI_API_KEY || undefined,
    openaiBaseUrl: url(env, 'OPENAI_BASE_URL', 'https://api.openai.com/v1', ['https:', 'http:'])!,
    openaiModel: env.OPENAI_MODEL || 'gpt-realtime',
    voice: env.VOICE || 'marin',
    instructions,
    greeting: env.GREETING || undefined,
    publicUrl: url(env, 'PUBLIC_URL', undefined, ['https:', 'http:', 'wss:', 'ws:']),
    audioFormat: format,
    twilioAuthToken: env.TWILIO_AUTH_TOKEN || undefined,
    allowUnsigned,
    streamParameters: parameters(env.STREAM_PARAMETERS),
    playbackLeadMs: int(env, 'PLAYBACK_LEAD_MS', 80, 20, 10_000),
    markIntervalMs: int(env, 'MARK_INTERVAL_MS', 200, 20, 10_000),
    echoTailMs: int(env, 'ECHO_TAIL_MS', 400, 0, 5_000),
    bargeIn: ['on', 'true', '1'].includes(bargeIn),
    vadThresholdDb: num(env, 'VAD_THRESHOLD_DB', 8, 1, 60),
    vadMinSpeechMs: int(env, 'VAD_MIN_SPEECH_MS', 20, 0, 2_000),
    vadHangoverMs: int(env, 'VAD_HANGOVER_MS', 300, 0, 5_000),
    echoMarginDb: num(env, 'ECHO_MARGIN_DB', 8, 0, 60),
    vadBotMinSpeechMs: int(env, 'VAD_BOT_MIN_SPEECH_MS', 20, 0, 2_000),
    modelConnectTimeoutMs: int(env, 'MODEL_CONNECT_TIMEOUT_MS', 5000, 100, 120_000),
    startTimeoutMs: int(env, 'START_TIMEOUT_MS', 10_000, 100, 600_000),
    queueSeconds: num(env, 'QUEUE_SECONDS', 5, 1, 600),
    maxMessageBytes: int(env, 'MAX_MESSAGE_BYTES', 1 << 20, 1024, 64 << 20),
    maxMessagesPerSecond: int(env, 'MAX_MESSAGES_PER_S', 200, 0, 1_000_000),
    modelMaxBufferedBytes: int(env, 'MODEL_MAX_BUFFERED_BYTES', 1 << 20, 16 * 1024, 1 << 30),
    outboundPauseBytes,
    logLevel: env.LOG_LEVEL || 'info',
    workers: int(env, 'WORKERS', Math.min(availableParallelism(), 256), 0, 256),
    drainSeconds: int(env, 'DRAIN_SECONDS', 30, 0, 86_400),
    maxCalls: int(env, 'MAX_CALLS', 200, 0, 1_000_000),
    upgradeRatePerMin: int(env, 'UPGRADE_RATE_PER_MIN', 120, 0, 1_000_000),
    upgradeBurst: int(env, 'UPGRADE_BURST', 30, 1, 1_000_000),
    wsIdleTimeoutS,
    wsMaxBackpressureBytes,
    clientIpHeader,
  };
}

/**
 * How the Twilio side is authenticated:
 *   signed    TWILIO_AUTH_TOKEN set: every webhook and upgrade signature is checked.
 *   local     no token, no OPENAI_API_KEY: the embedded local model, nothing to spend.
 *   insecure  OPENAI_API_KEY without a token, ALLOW_UNSIGNED set: runs, warning at start and per call.
 *   refused   OPENAI_API_KEY without a token: anyone could open model sessions on the key.
 */
export type SignatureMode = 'signed' | 'local' | 'insecure' | 'refused';

export function signatureMode(config: Pick<Config, 'openaiApiKey' | 'twilioAuthToken' | 'allowUnsigned'>): SignatureMode {
  if (config.twilioAuthToken) return 'signed';
  if (!config.openaiApiKey) return 'local';
  return config.allowUnsigned ? 'insecure' : 'refused';
}

/** What `start` says when it refuses to run unsigned on a real key. */
export const UNSIGNED_REFUSAL =
  'OPENAI_API_KEY is set but TWILIO_AUTH_TOKEN is not: without it, X-Twilio-Signature is not checked and ' +
  'anyone who can reach this server can open model sessions on your key. Set TWILIO_AUTH_TOKEN ' +
  '(your Twilio auth token), or ALLOW_UNSIGNED=1 for local development only.';

/** The loud start-up line of the insecure mode. */
export const UNSIGNED_WARNING =
  'INSECURE: ALLOW_UNSIGNED is set and TWILIO_AUTH_TOKEN is not: Twilio signatures are NOT checked, and anyone ' +
  'who can reach this server can open model sessions on your OpenAI key. For development only.';

/** Throws ConfigError when the configuration would serve unsigned streams on a real key. */
export function checkSignaturePolicy(config: Pick<Config, 'openaiApiKey' | 'twilioAuthToken' | 'allowUnsigned'>): SignatureMode {
  const mode = signatureMode(config);
  if (mode === 'refused') throw new ConfigError(UNSIGNED_REFUSAL);
  return mode;
}

/** The README's configuration table, from CONFIG_TABLE. */
export function describeConfig(): string {
  const rows = CONFIG_TABLE.map((e) => `| \`${e.env}\` | ${e.default} | ${e.doc} |`);
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
