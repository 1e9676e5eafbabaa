// Baseline (b): a pcmu passthrough bridge written like Twilio's official sample
// (twilio-samples/speech-assistant-openai-realtime-api-node, GA version): a `ws` server, every
// message JSON.parsed, the Twilio payload string forwarded as is in an input_audio_buffer.append,
// each model audio delta forwarded as one Twilio media message followed by a mark, barge-in on the
// model's speech_started (truncate at the caller's media timestamp, clear). Same structure and
// per-message work as the sample; the sample's console logging is left out (it would only make
// the baseline slower), and `ws`'s own HTTP server stands in for fastify.
// Used by `npm run loadtest` as the peer of voicebridge's AUDIO_FORMAT=pcmu mode.
import WebSocket from 'ws';
import { serveBaseline, type BaselineBridge, type BaselineOptions } from './serve.js';

export type { BaselineBridge, BaselineOptions };

export function startPassthroughBridge(opts: BaselineOptions): Promise<BaselineBridge> {
  return serveBaseline(opts, { message: 'Twilio Media Stream Server is running!' }, (connection, call) => {
    let streamSid: string | null = null;
    let latestMediaTimestamp = 0;
    let lastAssistantItem: string | null = null;
    let markQueue: string[] = [];
    let responseStartTimestampTwilio: number | null = null;

    const openAiWs = new WebSocket(call.modelUrl, { headers: { Authorization: `Bearer ${call.apiKey}` } });

    const initializeSession = () => {
      const sessionUpdate = {
        type: 'session.update',
        session: {
          type: 'realtime',
          model: opts.model ?? 'gpt-realtime',
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
        call.error();
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
        call.error();
      }
    });

    connection.on('close', () => {
      if (openAiWs.readyState === WebSocket.OPEN) openAiWs.close();
      else if (openAiWs.readyState === WebSocket.CONNECTING) openAiWs.terminate();
    });
    openAiWs.on('error', call.error);
  });
}
