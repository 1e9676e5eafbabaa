// What the two baseline bridges share and is not the bridging itself: the `ws` server on
// /media-stream, the model URL, the count of calls and errors, listen and close. Each baseline
// keeps its own per-connection code, written the way its kind of bridge is.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

export interface BaselineOptions {
  host?: string;
  port?: number;
  /** Like OPENAI_BASE_URL, e.g. http://127.0.0.1:PORT/v1 */
  modelBaseUrl: string;
  apiKey: string;
  model?: string;
}

export interface BaselineBridge {
  port: number;
  activeCalls(): number;
  /** Exceptions and socket errors seen (the sample would console.error them). */
  errors(): number;
  close(): Promise<void>;
}

export interface BaselineCall {
  /** The model's realtime socket URL (BASE/realtime?model=...). */
  modelUrl: string;
  apiKey: string;
  /** Counts an exception or socket error. */
  error(): void;
}

/** Serves `onCall` for every Twilio stream; GET answers `health` as JSON. */
export function serveBaseline(opts: BaselineOptions, health: object,
  onCall: (twilio: WebSocket, call: BaselineCall) => void): Promise<BaselineBridge> {
  const model = opts.model ?? 'gpt-realtime';
  const call: BaselineCall = {
    modelUrl: `${opts.modelBaseUrl.replace(/^http/, 'ws').replace(/\/+$/, '')}/realtime?model=${encodeURIComponent(model)}`,
    apiKey: opts.apiKey,
    error: () => { errors++; },
  };
  const active = new Set<WebSocket>();
  let errors = 0;

  const http = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(health));
  });
  const wss = new WebSocketServer({ server: http, path: '/media-stream' });
  wss.on('connection', (twilio) => {
    active.add(twilio);
    twilio.on('close', () => active.delete(twilio));
    twilio.on('error', call.error);
    onCall(twilio, call);
  });

  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      resolve({
        port: (http.address() as AddressInfo).port,
        activeCalls: () => active.size,
        errors: () => errors,
        close: () => new Promise<void>((done) => {
          for (const c of active) c.terminate();
          wss.close();
          http.close(() => done());
        }),
      });
    });
  });
}
