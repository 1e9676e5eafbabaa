// `voicebridge start`: the bridge, on the embedded local model when no OpenAI key is set.
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { startBridge } from './server.js';
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
  const server = await startBridge(config, log);
  log.info({ port: server.port, audioFormat: config.audioFormat, model: config.openaiModel,
    modelUrl: config.openaiBaseUrl }, `voicebridge listening on ${config.host}:${server.port}`);
  const stop = (signal: string) => {
    log.info({ signal, activeCalls: server.calls.size }, 'shutting down');
    server.close();
    void local?.close();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return -1;
}
