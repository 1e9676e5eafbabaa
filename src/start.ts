// `voicebridge start`: the bridge, on the embedded local model when no OpenAI key is set.
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { runServer } from './cluster.js';
import { startLocalModel } from './model/local/index.js';

export async function runStart(env: Record<string, string | undefined> = process.env): Promise<number> {
  let config;
  try {
    config = loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`voicebridge: configuration error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const log = createLogger(config.logLevel);
  let local: Awaited<ReturnType<typeof startLocalModel>> | undefined;
  if (!config.openaiApiKey) {
    local = await startLocalModel({ host: '127.0.0.1', port: 0, record: false });
    config.openaiBaseUrl = local.url;
    log.warn({ modelUrl: local.url },
      'OPENAI_API_KEY is not set: using the embedded local model (it answers each caller turn by playing it back)');
  }
  // SIGTERM/SIGINT: drain (DRAIN_SECONDS), then exit 0; a second signal ends the calls at once.
  const server = await runServer(config, log, { onStopped: () => local?.close() });
  log.info({ port: server.port, workers: server.workers, audioFormat: config.audioFormat, model: config.openaiModel,
    modelUrl: config.openaiBaseUrl }, `voicebridge listening on ${config.host}:${server.port}`);
  return -1;
}
