// `npm run demo`: the whole product on one machine. The local model, the bridge and a simulated
// Twilio call: the caller speaks, the bot answers (the local model plays the caller's words
// back), and the caller talks over the bot, which must stop within a frame or two.
import { fileURLToPath } from 'node:url';
import { loadConfig } from './config.js';
import { createLogger } from './log.js';
import { startBridge } from './server.js';
import { startLocalModel } from './model/local/index.js';
import { loadCallerWav, simulateCall } from './simulate/index.js';
import { formatReport } from './simulate/cli.js';
import { decodeMulaw } from './dsp/g711.js';
import { writeWavFile } from './audio/wav.js';

const fixture = (name: string) => fileURLToPath(new URL(`../test/fixtures/speech/${name}`, import.meta.url));

async function speech(name: string): Promise<Int16Array> {
  const a = await loadCallerWav(fixture(name));
  return a instanceof Int16Array ? a : decodeMulaw(a.mulaw);
}

/** Caller: a first question, then a second one that starts while the bot is still answering. */
export async function demoCaller(): Promise<Int16Array> {
  const first = await speech('u1_clean.wav');
  const second = await speech('u2_clean.wav');
  const out = new Int16Array(first.length + second.length);
  out.set(first, 0);
  out.set(second, first.length);
  return out;
}

export async function runDemo(argv: string[]): Promise<number> {
  const outPath = argv[argv.indexOf('--out') + 1] && argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : 'heard.wav';
  const local = await startLocalModel({ host: '127.0.0.1', port: 0 });
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' });
  config.openaiBaseUrl = local.url;
  const log = createLogger(config.logLevel);
  const bridge = await startBridge(config, log);
  process.stdout.write(`demo: local model at ${local.url}, bridge on ws://127.0.0.1:${bridge.port}/media-stream\n`);
  try {
    const report = await simulateCall({
      url: `ws://127.0.0.1:${bridge.port}/media-stream`,
      caller: await demoCaller(),
      parameters: { From: '+15550100', To: '+15550199' },
      tailMs: 2500,
    });
    await writeWavFile(outPath, { sampleRate: 8000, channels: 1, codec: 'pcm16', data: report.heard });
    process.stdout.write(formatReport(report));
    const session = local.sessions[0];
    for (const t of session?.truncations ?? []) {
      process.stdout.write(`model: conversation.item.truncate ${JSON.stringify(t)}\n`);
    }
    process.stdout.write(`demo: what the caller heard is in ${outPath}\n`);
    return report.clearsReceived > 0 ? 0 : 1;
  } finally {
    bridge.close();
    await local.close();
  }
}
