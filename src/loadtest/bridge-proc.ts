// A bridge under test, alone in its process (so /proc/<pid>/stat is its CPU and nothing else's):
//   voicebridge  - startBridge() from src/server.ts with the config `voicebridge start` would load
//                  from the same environment (AUDIO_FORMAT from argv), model = the local model
//   transcoding  - bench/baselines/transcoding-bridge.ts
//   passthrough  - bench/baselines/passthrough-bridge.ts
//   floor        - floor-bridge.ts: the I/O floor (messages moved with no parsing or DSP)
// argv: <kind> <modelBaseUrl> [pcm24k|pcmu]. Started with --expose-gc so the orchestrator can
// measure idle memory after a full collection. IPC: stats, gc.
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { announce, REPO_ROOT, serve } from './child.js';
import { mappingRss, rssBytes } from './proc.js';

export type BridgeKind = 'voicebridge' | 'transcoding' | 'passthrough' | 'floor';

export interface BridgeMemory {
  rss: number;
  heapUsed: number;
  /** C++ objects bound to JS (incl. Buffers and WASM memory), bytes. */
  external: number;
  arrayBuffers: number;
  wasmBytes: number;
  /** Resident part of the WASM memory. */
  wasmRss: number;
}

export interface BridgeStats {
  activeCalls: number;
  /** Error-level log lines (voicebridge) or caught exceptions/socket errors (baselines). */
  errors: number;
  warnings: number;
  errorLines: string[];
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** WASM linear memory (voicebridge), bytes. */
  wasmBytes: number;
  /** Event-loop delay p99 since the last loopReset, ms (a blocked loop delays every call). */
  loopDelayP99Ms: number;
  /** GC pauses since the last loopReset (the load test's forced collections excluded), ms. */
  gcPauseTotalMs: number;
  gcPauseMaxMs: number;
}

const [kind, modelBaseUrl, format = 'pcm24k'] = process.argv.slice(2) as [BridgeKind, string, string];

async function main(): Promise<void> {
  let active: () => number;
  let errorCount: () => number;
  let warningCount: () => number = () => 0;
  let wasmBytes: () => number = () => 0;
  const errorLines: string[] = [];
  let port: number;

  if (kind === 'voicebridge') {
    const { loadConfig } = await import('../config.js');
    const { createLogger } = await import('../log.js');
    const { startBridge } = await import('../server.js');
    const { loadDsp } = await import('../dsp/wasm.js');
    const config = loadConfig({
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      OPENAI_API_KEY: 'loadtest',
      OPENAI_BASE_URL: modelBaseUrl,
      AUDIO_FORMAT: format,
      LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
      // One generator address opening hundreds of streams: no admission limits.
      MAX_CALLS: '0',
      UPGRADE_RATE_PER_MIN: '0',
    });
    let errors = 0;
    let warnings = 0;
    // Count what the bridge reports at warn/error instead of printing it per call.
    const destination = {
      write(line: string) {
        const m = /"level":(\d+)/.exec(line);
        const level = m ? Number(m[1]) : 30;
        if (level >= 50) {
          errors++;
          if (errorLines.length < 10) errorLines.push(line.trim().slice(0, 400));
        } else if (level >= 40) {
          warnings++;
          if (errorLines.length < 10) errorLines.push(line.trim().slice(0, 400));
        }
      },
    };
    const log = createLogger(config.logLevel, destination);
    const server = await startBridge(config, log);
    port = server.port;
    active = () => server.calls.size;
    errorCount = () => errors;
    warningCount = () => warnings;
    wasmBytes = () => loadDsp().memory.buffer.byteLength;
  } else if (kind === 'transcoding' || kind === 'passthrough') {
    const file = kind === 'transcoding' ? 'transcoding-bridge' : 'passthrough-bridge';
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    // Not a static import: bench/ is outside the src/ build, and only this process needs it.
    const mod = await import(pathToFileURL(join(REPO_ROOT, 'bench', 'baselines', file + ext)).href);
    const start = kind === 'transcoding' ? mod.startTranscodingBridge : mod.startPassthroughBridge;
    const bridge = await start({ host: '127.0.0.1', port: 0, modelBaseUrl, apiKey: 'loadtest' });
    port = bridge.port;
    active = () => bridge.activeCalls();
    errorCount = () => bridge.errors();
  } else if (kind === 'floor') {
    const { startFloorBridge } = await import('./floor-bridge.js');
    const bridge = await startFloorBridge({ host: '127.0.0.1', modelBaseUrl, apiKey: 'loadtest' });
    port = bridge.port;
    active = () => bridge.activeCalls();
    errorCount = () => bridge.errors();
  } else {
    throw new Error(`unknown bridge kind ${kind}`);
  }

  // A 20 ms sampling timer: negligible next to the bridge's own 10 ms pacing ticker.
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  let gcPauseTotal = 0;
  let gcPauseMax = 0;
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcPauseTotal += e.duration;
      if (e.duration > gcPauseMax) gcPauseMax = e.duration;
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  serve({
    loopReset() {
      loop.reset();
      gcPauseTotal = 0;
      gcPauseMax = 0;
      return true;
    },
    stats(): BridgeStats {
      const m = process.memoryUsage();
      return {
        activeCalls: active(), errors: errorCount(), warnings: warningCount(), errorLines: [...errorLines],
        heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, wasmBytes: wasmBytes(),
        loopDelayP99Ms: loop.percentile(99) / 1e6,
        gcPauseTotalMs: gcPauseTotal,
        gcPauseMaxMs: gcPauseMax,
      };
    },
    /** Where the memory is: RSS, JS heap, off-heap buffers, WASM memory (size and resident). */
    memory(): BridgeMemory {
      const m = process.memoryUsage();
      const wasm = wasmBytes();
      return {
        rss: rssBytes(process.pid), heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers,
        wasmBytes: wasm, wasmRss: wasm ? mappingRss('self', wasm) : 0,
      };
    },
    gc() {
      const g = (globalThis as { gc?: () => void }).gc;
      // The forced collection is the load test's, not the bridge's: keep it out of the figures.
      loop.disable();
      gcObserver.disconnect();
      if (g) {
        g();
        g();
      }
      loop.enable();
      setImmediate(() => gcObserver.observe({ entryTypes: ['gc'] }));
      return Boolean(g);
    },
  });
  announce('ready', { port });
}

main().catch((e) => {
  process.stderr.write(`bridge-proc: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
