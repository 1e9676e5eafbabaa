// The uWebSockets.js app: the Twilio sample's routes (ALL /incoming-call, WS /media-stream,
// GET /) with small, direct handlers. Each WebSocket gets one Call; the Call owns everything else.
import { Registry } from 'prom-client';
import uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import { Call, type CallOptions, type CarrierSocket } from './bridge/call.js';
import { signatureMode, type Config } from './config.js';
import { NOOP_FAULT_METRICS, promFaultMetrics, type FaultMetrics } from './bridge/faults.js';
import { connectModel } from './model/client.js';
import type { ModelLink } from './model/client.js';
import { connectStreamTwiml, TwimlError } from './twilio/twiml.js';
import { formParams, SIGNATURE_HEADER, validateRequest } from './twilio/signature.js';
import { gateUpgrade, mountOpsRoutes, reserveCallSlot } from './workers/http.js';
import { createOps, type BridgeOps } from './workers/ops.js';

export interface BridgeServer {
  port: number;
  calls: Set<Call>;
  /** Ends every call ('shutdown') and stops listening. */
  close(): void;
  /** Closes every socket left (keep-alive, close handshakes) so a worker thread can exit. */
  forceClose(): void;
}

export interface BridgeDeps {
  /** Opens the model session for a new call (defaults to the Realtime client per config). */
  openModel?: (config: Config) => ModelLink;
  /** Metrics, limits, draining (src/workers/ops.ts). Default: one for this bridge, from config. */
  ops?: BridgeOps;
}

const MEDIA_PATH = '/media-stream';
/** Bot audio is paced from one ticker per thread rather than one timer per call. */
const PACE_TICK_MS = 10;

interface SocketData {
  call?: Call;
  closed: boolean;
  remote: string;
  /** Holds a MAX_CALLS slot, given back on close. */
  slot: boolean;
}

/** The fault counters live in the same per-thread registry as the bridge metrics, when there is one. */
function faultMetrics(ops: BridgeOps): FaultMetrics {
  const registry = (ops.metrics as { registry?: unknown }).registry;
  return registry instanceof Registry ? promFaultMetrics(registry) : NOOP_FAULT_METRICS;
}

function defaultModel(config: Config): ModelLink {
  return connectModel({
    apiKey: config.openaiApiKey ?? 'local',
    baseURL: config.openaiBaseUrl,
    model: config.openaiModel,
    readyTimeoutMs: config.modelConnectTimeoutMs,
    session: {
      format: config.audioFormat,
      model: config.openaiModel,
      voice: config.voice,
      instructions: config.instructions,
      // Barge-in is the bridge's decision, not the model's: the bridge knows what it played and
      // tells the caller from the bot's own echo (bridge/echo.ts), then sends response.cancel
      // itself. The model's VAD hears a speakerphone's echo as speech and would cut its own
      // answer short; and with BARGE_IN=off the bot must not be interrupted at all.
      turnDetection: { interrupt_response: false },
    },
  });
}

function callOptions(config: Config): CallOptions {
  return {
    format: config.audioFormat,
    playbackLeadMs: config.playbackLeadMs,
    markIntervalMs: config.markIntervalMs,
    echoTailMs: config.echoTailMs,
    echoMarginDb: config.echoMarginDb,
    bargeIn: config.bargeIn,
    queueSeconds: config.queueSeconds,
    startTimeoutMs: config.startTimeoutMs,
    greeting: config.greeting,
    maxMessagesPerSecond: config.maxMessagesPerSecond,
    modelMaxBufferedBytes: config.modelMaxBufferedBytes,
    outboundPauseBytes: config.outboundPauseBytes,
    // `start` refuses a real key without signatures unless ALLOW_UNSIGNED; then every call says so.
    warnUnsigned: signatureMode(config) === 'insecure',
    vad: {
      thresholdDb: config.vadThresholdDb,
      minSpeechMs: config.vadMinSpeechMs,
      hangoverMs: config.vadHangoverMs,
      // The echo gate (bridge/echo.ts) sets the bot-mode threshold frame by frame.
      botThresholdDb: config.vadThresholdDb,
      botMinSpeechMs: config.vadBotMinSpeechMs,
    },
  };
}

/** The public origin Twilio reaches us at: PUBLIC_URL, else the request's Host header. */
function publicOrigin(config: Config, host: string): string {
  if (config.publicUrl) return config.publicUrl.replace(/^http/, 'ws').replace(/^ws:/, 'wss:').replace(/\/+$/, '');
  return `wss://${host}`;
}

function httpsOrigin(config: Config, host: string): string {
  return publicOrigin(config, host).replace(/^wss/, 'https');
}

export function startBridge(config: Config, log: Logger, deps: BridgeDeps = {}): Promise<BridgeServer> {
  const openModel = deps.openModel ?? defaultModel;
  const ownOps = deps.ops ? undefined : createOps(config);
  const ops: BridgeOps = deps.ops ?? ownOps!;
  const calls = new Set<Call>();
  const opts: CallOptions = { ...callOptions(config), metrics: ops.metrics, faults: faultMetrics(ops) };
  const app = uWS.App();
  mountOpsRoutes(app, ops);

  app.get('/', (res) => {
    res.writeHeader('Content-Type', 'application/json').end(JSON.stringify({ ok: true, service: 'voicebridge', calls: calls.size }));
  });

  app.any('/incoming-call', (res, req) => {
    const host = req.getHeader('host');
    const signature = req.getHeader(SIGNATURE_HEADER);
    const path = req.getUrl() + (req.getQuery() ? `?${req.getQuery()}` : '');
    const method = req.getMethod();
    let aborted = false;
    res.onAborted(() => { aborted = true; });
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      size += chunk.byteLength;
      if (size > 64 * 1024) {
        if (!aborted) { aborted = true; res.cork(() => res.writeStatus('413 Payload Too Large').end('body too large')); }
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast || aborted) return;
      const post = method === 'post';
      const form = post ? formParams(Buffer.concat(chunks).toString('utf8')) : formParams(path.split('?')[1] ?? '');
      // Twilio signs the URL (query included) plus the POST body's params: a GET signs no params.
      res.cork(() => answerIncomingCall(res, host, path, signature, post ? form : {}, form));
    });
  });

  function answerIncomingCall(res: uWS.HttpResponse, host: string, path: string, signature: string,
    signedParams: Record<string, string | string[]>, form: Record<string, string | string[]>): void {
    if (config.twilioAuthToken) {
      const url = httpsOrigin(config, host) + path;
      if (!validateRequest(config.twilioAuthToken, signature, url, signedParams)) {
        log.warn({ path }, 'rejected /incoming-call: bad X-Twilio-Signature');
        res.writeStatus('403 Forbidden').end('invalid signature');
        return;
      }
    }
    const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
    const parameters: Record<string, string> = { ...config.streamParameters };
    for (const k of ['CallSid', 'From', 'To']) {
      const v = first(form[k]);
      if (v) parameters[k] = v;
    }
    try {
      const twiml = connectStreamTwiml({ streamUrl: publicOrigin(config, host) + MEDIA_PATH, parameters });
      res.writeHeader('Content-Type', 'text/xml').end(twiml);
    } catch (e) {
      const msg = e instanceof TwimlError ? e.message : 'internal error';
      log.error({ err: (e as Error).message }, 'cannot build TwiML');
      res.writeStatus('500 Internal Server Error').end(msg);
    }
  }

  app.ws<SocketData>(MEDIA_PATH, {
    compression: uWS.DISABLED,
    ...ops.limits.wsOptions(),
    upgrade: (res, req, context) => {
      // Draining and the per-address rate, before any signature work.
      if (!gateUpgrade(res, req, ops)) return;
      const host = req.getHeader('host');
      const signature = req.getHeader(SIGNATURE_HEADER);
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
      if (config.twilioAuthToken) {
        // Twilio signs the public wss:// URL of the stream, with no params.
        const url = publicOrigin(config, host) + MEDIA_PATH;
        if (!validateRequest(config.twilioAuthToken, signature, url, {})) {
          log.warn({ remote }, 'rejected media-stream upgrade: bad X-Twilio-Signature');
          ops.metrics.upgradeRejected('bad_signature');
          res.writeStatus('403 Forbidden').end('invalid signature');
          return;
        }
      }
      // MAX_CALLS, process-wide; the slot is given back in `close`.
      if (!reserveCallSlot(res, ops)) return;
      res.upgrade<SocketData>({ closed: false, remote, slot: true }, key, protocol, extensions, context);
    },
    open: (ws) => {
      const data = ws.getUserData();
      const carrier: CarrierSocket = {
        send: (m) => {
          if (!data.closed && ws.send(m, false) === 2) ops.metrics.backpressureDrop();
        },
        close: (code, reason) => {
          if (data.closed) return;
          data.closed = true;
          ws.end(code, reason);
        },
        batch: (fn) => {
          if (data.closed) fn();
          else ws.cork(fn);
        },
        bufferedAmount: () => (data.closed ? 0 : ws.getBufferedAmount()),
      };
      let model: ModelLink;
      try {
        model = openModel(config);
      } catch (e) {
        log.error({ err: (e as Error).message }, 'cannot open model session');
        carrier.close(1011, 'model unavailable');
        return;
      }
      const callLog = log.child({ remote: data.remote });
      try {
        data.call = new Call(carrier, model, opts, callLog, (c) => {
          calls.delete(c);
          ops.metrics.callEnded(c.outcome ?? 'hangup', c.stats);
        });
      } catch (e) {
        // An exception out of a uWS handler would take the whole process (every call) down.
        log.error({ err: (e as Error).stack }, 'cannot set up the call; closing the stream');
        try {
          model.close(1011, 'call setup failed');
        } catch {
          // the model link is what failed
        }
        carrier.close(1011, 'internal error');
        return;
      }
      calls.add(data.call);
      ops.metrics.callStarted(data.call.stats);
    },
    message: (ws, message, isBinary) => {
      const call = ws.getUserData().call;
      if (!call) return;
      if (isBinary) {
        call.rejectBinary();
        return;
      }
      try {
        call.onCarrierMessage(new Uint8Array(message));
      } catch (e) {
        // A bug hit by one call's input ends that call, never the process or another call.
        log.error({ err: (e as Error).stack, callSid: call.callSid }, 'call handler threw; ending call');
        call.end('bad_stream', 1011, 'internal error');
      }
    },
    close: (ws, code, message) => {
      const data = ws.getUserData();
      data.closed = true;
      if (data.slot) {
        data.slot = false;
        ops.limits.releaseCall();
      }
      try {
        // A hang-up, or uWS dropping a message over MAX_MESSAGE_BYTES (1006 "Received too big message").
        data.call?.carrierClosed(code, Buffer.from(message).toString('utf8'));
      } catch (e) {
        log.error({ err: (e as Error).stack }, 'ending a hung-up call threw');
      }
    },
  });

  const ticker = setInterval(() => {
    const t = performance.now();
    for (const call of calls) {
      try {
        call.tick(t);
      } catch (e) {
        log.error({ err: (e as Error).stack, callSid: call.callSid }, 'pacer threw; ending call');
        call.end('bad_stream', 1011, 'internal error');
      }
    }
  }, PACE_TICK_MS);

  return new Promise((resolve, reject) => {
    app.listen(config.host, config.port, (socket) => {
      if (!socket) {
        clearInterval(ticker);
        reject(new Error(`cannot listen on ${config.host}:${config.port}`));
        return;
      }
      const port = uWS.us_socket_local_port(socket);
      let closed = false;
      resolve({
        port,
        calls,
        close() {
          // Idempotent: closing a uWS listen socket twice is a use-after-free in native code.
          if (closed) return;
          closed = true;
          clearInterval(ticker);
          for (const c of [...calls]) c.end('shutdown', 1001, 'server shutting down');
          uWS.us_listen_socket_close(socket);
          ownOps?.stop();
        },
        forceClose() {
          // uWS's app.close() closes every socket of the app; its typings lack it.
          (app as unknown as { close(): void }).close();
        },
      });
    });
  });
}
