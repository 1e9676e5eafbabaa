// The I/O floor: the least a pcmu bridge can do per message, to show how much of a bridge's CPU
// is its own work and how much is moving messages through sockets. The same sockets as
// voicebridge (uWebSockets.js towards Twilio, `ws` towards the model) and the same message
// counts, but no JSON.parse, no DSP, no pacing, no marks: the payload/delta string is sliced out
// of the message and spliced into the other side's message. Not a usable bridge (no barge-in,
// no truncation): a reference column in the load test.
import uWS from 'uWebSockets.js';
import WebSocket from 'ws';

export interface FloorBridge {
  port: number;
  activeCalls(): number;
  errors(): number;
  close(): void;
}

interface Data {
  model?: WebSocket;
  streamSid: string;
  closed: boolean;
}

const MEDIA = Buffer.from('{"event":"media"', 'latin1');
const PAYLOAD = Buffer.from('"payload":"', 'latin1');
const DELTA_PREFIX = Buffer.from('{"type":"response.output_audio.delta"', 'latin1');
const DELTA = Buffer.from('"delta":"', 'latin1');

function startsWith(b: Buffer, p: Buffer): boolean {
  return b.length >= p.length && b.compare(p, 0, p.length, 0, p.length) === 0;
}

export function startFloorBridge(opts: { host: string; modelBaseUrl: string; apiKey: string }): Promise<FloorBridge> {
  const url = `${opts.modelBaseUrl.replace(/^http/, 'ws').replace(/\/+$/, '')}/realtime?model=gpt-realtime`;
  let active = 0;
  let errors = 0;
  const session = JSON.stringify({
    type: 'session.update',
    session: {
      type: 'realtime', output_modalities: ['audio'],
      audio: { input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad' } }, output: { format: { type: 'audio/pcmu' } } },
    },
  });
  const app = uWS.App();
  app.ws<Data>('/media-stream', {
    compression: uWS.DISABLED,
    maxPayloadLength: 1 << 20,
    idleTimeout: 60,
    upgrade: (res, req, ctx) => {
      res.upgrade<Data>({ streamSid: '', closed: false }, req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), ctx);
    },
    open: (ws) => {
      active++;
      const d = ws.getUserData();
      const model = new WebSocket(url, { headers: { Authorization: `Bearer ${opts.apiKey}` }, perMessageDeflate: false });
      d.model = model;
      model.on('open', () => model.send(session));
      model.on('error', () => { errors++; });
      model.on('message', (data: Buffer) => {
        if (d.closed) return;
        if (startsWith(data, DELTA_PREFIX)) {
          const s = data.indexOf(DELTA) + DELTA.length;
          const e = data.indexOf(0x22, s);
          ws.send(`{"event":"media","streamSid":"${d.streamSid}","media":{"payload":"${data.toString('latin1', s, e)}"}}`, false);
        }
      });
    },
    message: (ws, message) => {
      const d = ws.getUserData();
      const buf = Buffer.from(message);
      if (startsWith(buf, MEDIA)) {
        const s = buf.indexOf(PAYLOAD) + PAYLOAD.length;
        const e = buf.indexOf(0x22, s);
        if (d.model?.readyState === WebSocket.OPEN) d.model.send(`{"type":"input_audio_buffer.append","audio":"${buf.toString('latin1', s, e)}"}`);
        return;
      }
      try {
        const m = JSON.parse(buf.toString('utf8'));
        if (m.event === 'start') d.streamSid = m.start.streamSid;
      } catch {
        errors++;
      }
    },
    close: (ws) => {
      const d = ws.getUserData();
      d.closed = true;
      active--;
      d.model?.close();
    },
  });
  return new Promise((resolve, reject) => {
    app.listen(opts.host, 0, (sock) => {
      if (!sock) {
        reject(new Error('floor bridge cannot listen'));
        return;
      }
      resolve({
        port: uWS.us_socket_local_port(sock),
        activeCalls: () => active,
        errors: () => errors,
        close: () => uWS.us_listen_socket_close(sock),
      });
    });
  });
}
