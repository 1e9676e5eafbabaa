// `voicebridge start`: the bridge, on the embedded local model when no OpenAI key is set.
import type { DestinationStream } from 'pino';
import { checkSignaturePolicy, ConfigError, loadConfig, UNSIGNED_WARNING, type Config } from './config.js';
import { createLogger } from './log.js';
import { runServer, type RunningServer } from './cluster.js';
import { startLocalModel } from './model/local/index.js';

/** Test and embedding hooks; `voicebridge start` passes none. */
export interface StartHooks {
  /** Log destination (default stdout). */
  destination?: DestinationStream;
  /** Install SIGTERM/SIGINT handlers (default true). */
  signals?: boolean;
  /** Called once listening, with a stop that drains and closes the embedded local model. */
  started?: (server: RunningServer, stop: () => Promise<void>) => void;
}

/** Returns -1 while serving (the process stays up), else the exit code (2: configuration error). */
export async function runStart(env: Record<string, string | undefined> = process.env, hooks: StartHooks = {}): Promise<number> {
  let config: Config;
  let mode;
  try {
    config = loadConfig(env);
    // A real key without signature checks spends the operator's credits for anyone who finds
    // the URL: refuse, unless ALLOW_UNSIGNED says this is a development setup.
    mode = checkSignaturePolicy(config);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`voicebridge: configuration error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const log = createLogger(config.logLevel, hooks.destination);
  if (mode === 'insecure') log.warn({ allowUnsigned: true }, UNSIGNED_WARNING);
  let local: Awaited<ReturnType<typeof startLocalModel>> | undefined;
  if (!config.openaiApiKey) {
    local = await startLocalModel({ host: '127.0.0.1', port: 0, record: false });
    config.openaiBaseUrl = local.url;
    log.warn({ modelUrl: local.url },
      'OPENAI_API_KEY is not set: using the embedded local model (it answers each caller turn by playing it back)');
  }
  // SIGTERM/SIGINT: drain (DRAIN_SECONDS), then exit 0; a second signal ends the calls at once.
  const server = await runServer(config, log, { onStopped: () => local?.close(), signals: hooks.signals });
  log.info({ port: server.port, workers: server.workers, audioFormat: config.audioFormat, model: config.openaiModel,
    modelUrl: config.openaiBaseUrl, signatures: mode }, `voicebridge listening on ${config.host}:${server.port}`);
  hooks.started?.(server, async () => {
    await server.stop();
    await local?.close();
  });
  return -1;
}
