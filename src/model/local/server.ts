// The local model server: OpenAI Realtime GA over `ws` on 127.0.0.1. It is the embedded default
// model (an echo, so the bridge works end to end without an API key) and the scriptable fake the
// tests use: see LocalModelOptions for the knobs and LocalSession for what it records.
import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { LocalModelOptions } from './options.js';
import { LocalSession, type SessionHost } from './session.js';

export interface UpgradeRecord {
  url: string;
  headers: IncomingHttpHeaders;
  /** HTTP status sent when refused; 101 when accepted. */
  status: number;
}

export interface LocalModel {
  /** http base URL to hand to the client, e.g. http://127.0.0.1:PORT/v1 */
  readonly url: string;
  readonly port: number;
  /** Live options: changes apply to every session from its next step. */
  readonly options: LocalModelOptions;
  readonly sessions: LocalSession[];
  readonly upgrades: UpgradeRecord[];
  /** Resolves with sessions[index] once it has connected (default: the next one to connect). */
  session(index?: number): Promise<LocalSession>;
  close(): Promise<void>;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
};

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { message, type: 'invalid_request_error', code, param: null } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export async function startLocalModel(opts: LocalModelOptions = {}): Promise<LocalModel> {
  const options: LocalModelOptions = { ...opts };
  const host: SessionHost = { options, serial: 0 };
  const sessions: LocalSession[] = [];
  const upgrades: UpgradeRecord[] = [];
  const waiters: Array<{ index: number; resolve: (s: LocalSession) => void }> = [];

  // Appends are up to 15 MiB of base64 on the real API.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  const http = createServer((_req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain' });
    res.end('voicebridge local model: connect a WebSocket to /v1/realtime?model=...\n');
  });

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const rec: UpgradeRecord = { url: req.url ?? '', headers: req.headers, status: 101 };
    upgrades.push(rec);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const fail = (status: number, code: string, message: string) => {
      rec.status = status;
      refuse(socket, status, code, message);
    };
    if (url.pathname !== '/v1/realtime' && url.pathname !== '/realtime') return fail(404, 'not_found', `No route ${url.pathname}`);
    if (options.rejectUpgrade) return fail(options.rejectUpgrade, 'scripted_rejection', 'local model: scripted upgrade rejection');
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      return fail(401, 'invalid_api_key', 'Incorrect API key provided.');
    }
    const model = url.searchParams.get('model');
    if (!model) return fail(400, 'missing_model', "Missing required parameter: 'model'.");
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (req.headers['openai-beta']) {
        // GA servers refuse the beta shape outright (PROTOCOLS.md section 2).
        ws.close(4000, 'The beta Realtime API shape is not supported; remove the OpenAI-Beta header.');
        return;
      }
      const session = new LocalSession(ws, host, model, req.headers);
      sessions.push(session);
      if (options.record === false) {
        // Nothing reads the record of a long-running demo server: forget sessions once closed.
        void session.waitClosed().then(() => {
          const i = sessions.indexOf(session);
          if (i >= 0) sessions.splice(i, 1);
        });
      }
      options.onSession?.(session);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (sessions[waiters[i].index]) {
          waiters[i].resolve(sessions[waiters[i].index]);
          waiters.splice(i, 1);
        }
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  const hostName = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';

  return {
    url: `http://${hostName.includes(':') ? `[${hostName}]` : hostName}:${port}/v1`,
    port,
    options,
    sessions,
    upgrades,
    session(index = sessions.length) {
      if (sessions[index]) return Promise.resolve(sessions[index]);
      return new Promise((resolve) => waiters.push({ index, resolve }));
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
}
