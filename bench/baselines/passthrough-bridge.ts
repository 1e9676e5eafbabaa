// Baseline (b): a pcmu passthrough bridge written like Twilio's official sample
// (twilio-samples/speech-assistant-openai-realtime-api-node, GA version): a `ws` server, every
// message JSON.parsed, the Twilio payload string forwarded as is in an input_audio_buffer.append,
// each model audio delta forwarded as one Twilio media message followed by a mark, barge-in on the
// model's speech_started (truncate at the caller's media timestamp, clear). Same structure and
// per-message work as the sample; the sample's console logging is left out (it would only make
// the baseline slower), and `ws`'s own HTTP server stands in for fastify.
// Used by `npm run loadtest` as the peer of voicebridge's AUDIO_FORMAT=pcmu mode.
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

function realtimeUrl(base: string, model: string): string {
  return `${base.replace(/^http/, 'ws').replace(/\/+$/, '')}/realtime?model=${encodeURIComponent(model)}`;
}

export function startPassthroughBridge(opts: BaselineOptions): Promise<BaselineBridge> {
  const model = opts.model ?? 'gpt-realtime';
  const url = realtimeUrl(opts.modelBaseUrl, model);
  const active = new Set<WebSocket>();
  let errors = 0;

  const http = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ message: 'Twilio Media Stream Server is running!' }));
  });
  const wss = new WebSocketServer({ server: http, path: '/media-stream' });

  wss.on('connection', (connection) => {
    active.add(connection);
    let streamSid: string | null = null;
    let latestMediaTimestamp = 0;
    let lastAssistantItem: string | null = null;
    let markQueue: string[] = [];
    let responseStartTimestampTwilio: number | null = null;

    const openAiWs = new WebSocket(url, { headers: { Authorization: `Bearer ${opts.apiKey}` } });

    const initializeSession = () => {
      const sessionUpdate = {
        type: 'session.update',
        session: {
          type: 'realtime',
          model,
          output_modalities: ['audio'],
          audio: {
            input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad' } },
            output: { format: { type: 'audio/pcmu' }, voice: 'alloy' },
          },
          instructions: 'You are a helpful and bubbly AI assistant.',
        },
      };
      if (openAiWs.readyState === WebSocket.OPEN) openAiWs.send(JSON.stringify(sessionUpdate));
    };

    const handleSpeechStartedEvent = () => {
      if (markQueue.length > 0 && responseStartTimestampTwilio != null) {
        const elapsedTime = latestMediaTimestamp - responseStartTimestampTwilio;
        if (lastAssistantItem) {
          openAiWs.send(JSON.stringify({
            type: 'conversation.item.truncate', item_id: lastAssistantItem, content_index: 0, audio_end_ms: elapsedTime,
          }));
        }
        connection.send(JSON.stringify({ event: 'clear', streamSid }));
        markQueue = [];
        lastAssistantItem = null;
        responseStartTimestampTwilio = null;
      }
    };

    const sendMark = () => {
      if (streamSid) {
        connection.send(JSON.stringify({ event: 'mark', streamSid, mark: { name: 'responsePart' } }));
        markQueue.push('responsePart');
      }
    };

    openAiWs.on('open', () => {
      setTimeout(initializeSession, 100);
    });

    openAiWs.on('message', (data: Buffer) => {
      try {
        const response = JSON.parse(data.toString());
        if (response.type === 'response.output_audio.delta' && response.delta) {
          connection.send(JSON.stringify({ event: 'media', streamSid, media: { payload: response.delta } }));
          if (!responseStartTimestampTwilio) responseStartTimestampTwilio = latestMediaTimestamp;
          if (response.item_id) lastAssistantItem = response.item_id;
          sendMark();
        }
        if (response.type === 'input_audio_buffer.speech_started') handleSpeechStartedEvent();
      } catch {
        errors++;
      }
    });

    connection.on('message', (message: Buffer) => {
      try {
        const data = JSON.parse(message.toString());
        switch (data.event) {
          case 'media':
            latestMediaTimestamp = Number(data.media.timestamp);
            if (openAiWs.readyState === WebSocket.OPEN) {
              openAiWs.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: data.media.payload }));
            }
            break;
          case 'start':
            streamSid = data.start.streamSid;
            responseStartTimestampTwilio = null;
            latestMediaTimestamp = 0;
            break;
          case 'mark':
            if (markQueue.length > 0) markQueue.shift();
            break;
          default:
            break;
        }
      } catch {
        errors++;
      }
    });

    connection.on('close', () => {
      active.delete(connection);
      if (openAiWs.readyState === WebSocket.OPEN) openAiWs.close();
      else if (openAiWs.readyState === WebSocket.CONNECTING) openAiWs.terminate();
    });
    connection.on('error', () => { errors++; });
    openAiWs.on('error', () => { errors++; });
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
