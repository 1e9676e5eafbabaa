// Per-message receive cost of ModelConnection (raw delta bytes, a byte-prefix check, no parse)
// against the openai SDK's OpenAIRealtimeWS (toString + JSON.parse + two emits per message).
//
//   npx tsx bench/model-client.ts            # both parts
//   npx tsx bench/model-client.ts --quick    # shorter runs
//
// Part 1 (handler only): the very 'message' listener each client registers on its ws socket is
// fed prebuilt Buffers, so the numbers are the client's own per-message work.
// Part 2 (end to end): a child process blasts N deltas over loopback; the client process's CPU
// time per message is measured (the ws receive path included, which both share).
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { Bench } from 'tinybench';
import { WebSocketServer, type WebSocket } from 'ws';
import { connectModel, type ModelConnection } from '../src/model/client.js';

const quick = process.argv.includes('--quick');

/** Realistic deltas: G.711 at 20 and 100 ms, PCM16 24 kHz at 100 and 500 ms. */
const SIZES: Array<{ name: string; bytes: number }> = [
  { name: 'pcmu 20 ms (160 B)', bytes: 160 },
  { name: 'pcmu 100 ms (800 B)', bytes: 800 },
  { name: 'pcm24k 100 ms (4.8 kB)', bytes: 4800 },
  { name: 'pcm24k 500 ms (24 kB)', bytes: 24000 },
];

function deltaMessage(bytes: number): string {
  const audio = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) audio[i] = (i * 37) & 0xff;
  return JSON.stringify({
    type: 'response.output_audio.delta',
    event_id: 'event_CFqlzXzhbEWFoXZ8pXtXm',
    response_id: 'resp_CFqlzrQ6Hn4nHzY0X3Hzl',
    item_id: 'item_CFqlzaHz0ZFmY9qVd0Spm',
    output_index: 0,
    content_index: 0,
    delta: audio.toString('base64'),
  });
}

// ---- a minimal GA server, in a child process for part 2 -----------------------------------------
function serve(port: number, blast: boolean): Promise<{ port: number; close(): void }> {
  return new Promise((resolve) => {
    const wss = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: false }, () => {
      resolve({ port: (wss.address() as net.AddressInfo).port, close: () => wss.close() });
    });
    wss.on('connection', (ws: WebSocket) => {
      ws.on('message', (data) => {
        const ev = JSON.parse(data.toString());
        if (ev.type === 'session.update') {
          ws.send(JSON.stringify({ type: 'session.updated', event_id: 'e0', session: ev.session }));
        } else if (ev.type === 'bench.go' && blast) {
          const msg = Buffer.from(deltaMessage(ev.bytes));
          let left = ev.n as number;
          const pump = () => {
            while (left > 0 && ws.bufferedAmount < 4 << 20) {
              ws.send(msg, { binary: false });
              left--;
            }
            if (left > 0) setTimeout(pump, 1);
            else ws.send(JSON.stringify({ type: 'response.done', event_id: 'e1', response: { status: 'completed' } }));
          };
          pump();
        }
      });
    });
  });
}

if (process.argv[2] === '--server') {
  const srv = await serve(0, true);
  process.send?.({ port: srv.port });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

function sdkClient(port: number): OpenAIRealtimeWS {
  const client = new OpenAI({ apiKey: 'sk-bench', baseURL: `http://127.0.0.1:${port}/v1` });
  // The SDK always builds a wss:// URL; a plain TCP socket talks ws:// to the local server. ws
  // passes the URL path as `path`, which net.connect would take for an IPC socket, so only host+port.
  const rt = new OpenAIRealtimeWS(
    {
      model: 'gpt-realtime',
      options: { createConnection: (o: any) => net.connect({ host: o.hostname ?? o.host, port: Number(o.port) }) } as any,
    },
    client,
  );
  rt.on('error', (err) => console.error('sdk error', err.message));
  return rt;
}

function ownClient(port: number): ModelConnection {
  return connectModel({ apiKey: 'sk-bench', baseURL: `http://127.0.0.1:${port}/v1`, session: { format: 'pcmu' } });
}

async function opened(ws: any): Promise<void> {
  if (ws.readyState === 1) return;
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
}

async function handlerOnly(): Promise<void> {
  const srv = await serve(0, false);
  const own = ownClient(srv.port);
  await own.ready;
  const sdk = sdkClient(srv.port);
  await opened(sdk.socket);
  let sink = 0;
  own.onAudioDelta = (m) => {
    sink += m.length;
  };
  sdk.on('response.output_audio.delta', (ev) => {
    sink += ev.delta.length;
  });
  // The listeners each client put on its socket, called directly.
  const ownListener = (own as any).ws.listeners('message')[0] as (d: Buffer, bin: boolean) => void;
  const sdkListener = sdk.socket.listeners('message')[0] as (d: Buffer, bin: boolean) => void;

  console.log('\nPart 1: per-message handler cost (ns), same Buffer fed to each client\'s ws message listener');
  const rows: Array<Record<string, string>> = [];
  for (const size of SIZES) {
    const buf = Buffer.from(deltaMessage(size.bytes));
    const bench = new Bench({ time: quick ? 150 : 600, warmupTime: quick ? 50 : 200 });
    bench
      .add('ModelConnection', () => ownListener(buf, false))
      .add('OpenAIRealtimeWS', () => sdkListener(buf, false));
    await bench.run();
    const [a, b] = bench.tasks.map((t) => (t.result as any).latency.mean * 1e6);
    rows.push({
      delta: size.name,
      'message bytes': String(buf.length),
      'ModelConnection ns': a.toFixed(0),
      'OpenAIRealtimeWS ns': b.toFixed(0),
      'ratio': (b / a).toFixed(0) + 'x',
    });
  }
  console.table(rows);
  if (sink < 0) console.log(sink);
  own.close();
  sdk.close();
  srv.close();
}

async function endToEnd(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--server'], { execArgv: ['--import', 'tsx'] });
  const port: number = await new Promise((resolve) => child.once('message', (m: any) => resolve(m.port)));
  console.log('\nPart 2: end to end over loopback, client process CPU per message (us), server in a child process');
  const rows: Array<Record<string, string>> = [];
  for (const size of SIZES) {
    const n = Math.round((quick ? 2e7 : 8e7) / (size.bytes + 300));
    const result: Record<string, number[]> = { own: [], sdk: [] };
    for (let round = 0; round < (quick ? 1 : 3); round++) {
      for (const kind of ['own', 'sdk'] as const) {
        let got = 0;
        let done!: () => void;
        const finished = new Promise<void>((r) => (done = r));
        let send: (s: string) => void;
        let close: () => void;
        if (kind === 'own') {
          const c = ownClient(port);
          await c.ready;
          c.onAudioDelta = () => void got++;
          c.onEvent = (ev) => {
            if (ev.type === 'response.done') done();
          };
          send = (s) => c.sendRaw(Buffer.from(s));
          close = () => c.close();
        } else {
          const c = sdkClient(port);
          await opened(c.socket);
          c.on('response.output_audio.delta', () => void got++);
          c.on('response.done', () => done());
          send = (s) => c.socket.send(s);
          close = () => c.close();
        }
        const cpu0 = process.cpuUsage();
        send(JSON.stringify({ type: 'bench.go', n, bytes: size.bytes }));
        await finished;
        const cpu = process.cpuUsage(cpu0);
        if (got !== n) throw new Error(`${kind}: got ${got} of ${n}`);
        result[kind].push((cpu.user + cpu.system) / n);
        close();
      }
    }
    const best = (xs: number[]) => Math.min(...xs);
    rows.push({
      delta: size.name,
      messages: String(n),
      'ModelConnection us': best(result.own).toFixed(2),
      'OpenAIRealtimeWS us': best(result.sdk).toFixed(2),
      ratio: (best(result.sdk) / best(result.own)).toFixed(1) + 'x',
    });
  }
  console.table(rows);
  child.kill();
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await handlerOnly();
  await endToEnd();
}
