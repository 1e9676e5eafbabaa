// Baseline (a): a transcoding bridge written the way typical bridges are: a `ws` server,
// JSON.parse / JSON.stringify on every message, G.711 mu-law through JS lookup tables, linear
// interpolation to 24 kHz PCM16 for the model (input_audio_buffer.append) and back to 8 kHz for
// Twilio, base64 through Buffer. Otherwise shaped like Twilio's sample (mark per delta, barge-in on
// the model's speech_started with truncate + clear). The tables are the fast kind (one load per
// sample), so this is a fair, not a strawman, peer of voicebridge's AUDIO_FORMAT=pcm24k mode.
// Used by `npm run loadtest`.
import WebSocket from 'ws';
import { serveBaseline, type BaselineBridge, type BaselineOptions } from './serve.js';

export type { BaselineBridge, BaselineOptions };

// ---- G.711 mu-law (the classic Sun g711.c arithmetic, tabulated) ------------------------------

const BIAS = 0x84;
const CLIP = 32635;

function linearToUlaw(sample: number): number {
  const sign = (sample >> 8) & 0x80;
  if (sign) sample = -sample;
  if (sample > CLIP) sample = CLIP;
  sample += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (sample & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (sample >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function ulawToLinear(code: number): number {
  const u = ~code & 0xff;
  const t = (((u & 0x0f) << 3) + BIAS) << ((u & 0x70) >> 4);
  return u & 0x80 ? BIAS - t : t - BIAS;
}

const ULAW_DECODE = new Int16Array(256);
for (let i = 0; i < 256; i++) ULAW_DECODE[i] = ulawToLinear(i);
/** Indexed by the sample's 16-bit two's-complement pattern. */
const ULAW_ENCODE = new Uint8Array(65536);
for (let i = 0; i < 65536; i++) ULAW_ENCODE[i] = linearToUlaw((i << 16) >> 16);

function decodeUlaw(bytes: Buffer): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = ULAW_DECODE[bytes[i]];
  return out;
}

function encodeUlaw(pcm: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = ULAW_ENCODE[pcm[i] & 0xffff];
  return out;
}

/** Linear interpolation between neighbouring samples, each chunk on its own (no filter, no state). */
function resampleLinear(input: Int16Array, fromRate: number, toRate: number): Int16Array {
  const outLength = Math.floor((input.length * toRate) / fromRate);
  const out = new Int16Array(outLength);
  const step = fromRate / toRate;
  const last = input.length - 1;
  for (let i = 0; i < outLength; i++) {
    const pos = i * step;
    const i0 = Math.floor(pos);
    const i1 = i0 < last ? i0 + 1 : last;
    const frac = pos - i0;
    out[i] = Math.round(input[i0] + (input[i1] - input[i0]) * frac);
  }
  return out;
}

function pcm16FromBase64(b64: string): Int16Array {
  const buf = Buffer.from(b64, 'base64');
  const out = new Int16Array(buf.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(i * 2);
  return out;
}

function pcm16ToBase64(pcm: Int16Array): string {
  return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).toString('base64');
}

export function startTranscodingBridge(opts: BaselineOptions): Promise<BaselineBridge> {
  return serveBaseline(opts, { ok: true }, (twilio, call) => {
    let streamSid: string | null = null;
    let latestMediaTimestamp = 0;
    let responseStartTimestamp: number | null = null;
    let lastAssistantItem: string | null = null;
    let markQueue: string[] = [];

    const openAi = new WebSocket(call.modelUrl, { headers: { Authorization: `Bearer ${call.apiKey}` } });

    openAi.on('open', () => {
      openAi.send(JSON.stringify({
        type: 'session.update',
        session: {
          type: 'realtime',
          model: opts.model ?? 'gpt-realtime',
          output_modalities: ['audio'],
          audio: {
            input: { format: { type: 'audio/pcm', rate: 24000 }, turn_detection: { type: 'server_vad' } },
            output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy' },
          },
          instructions: 'You are a helpful assistant.',
        },
      }));
    });

    openAi.on('message', (data: Buffer) => {
      try {
        const event = JSON.parse(data.toString());
        switch (event.type) {
          case 'response.output_audio.delta': {
            const pcm8k = resampleLinear(pcm16FromBase64(event.delta), 24000, 8000);
            const payload = encodeUlaw(pcm8k).toString('base64');
            twilio.send(JSON.stringify({ event: 'media', streamSid, media: { payload } }));
            if (responseStartTimestamp === null) responseStartTimestamp = latestMediaTimestamp;
            if (event.item_id) lastAssistantItem = event.item_id;
            if (streamSid) {
              twilio.send(JSON.stringify({ event: 'mark', streamSid, mark: { name: 'responsePart' } }));
              markQueue.push('responsePart');
            }
            break;
          }
          case 'input_audio_buffer.speech_started':
            if (markQueue.length > 0 && responseStartTimestamp !== null) {
              if (lastAssistantItem) {
                openAi.send(JSON.stringify({
                  type: 'conversation.item.truncate', item_id: lastAssistantItem, content_index: 0,
                  audio_end_ms: latestMediaTimestamp - responseStartTimestamp,
                }));
              }
              twilio.send(JSON.stringify({ event: 'clear', streamSid }));
              markQueue = [];
              lastAssistantItem = null;
              responseStartTimestamp = null;
            }
            break;
          default:
            break;
        }
      } catch {
        call.error();
      }
    });

    twilio.on('message', (message: Buffer) => {
      try {
        const msg = JSON.parse(message.toString());
        switch (msg.event) {
          case 'media': {
            latestMediaTimestamp = Number(msg.media.timestamp);
            if (openAi.readyState !== WebSocket.OPEN) break;
            const pcm24k = resampleLinear(decodeUlaw(Buffer.from(msg.media.payload, 'base64')), 8000, 24000);
            openAi.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: pcm16ToBase64(pcm24k) }));
            break;
          }
          case 'start':
            streamSid = msg.start.streamSid;
            responseStartTimestamp = null;
            latestMediaTimestamp = 0;
            break;
          case 'mark':
            if (markQueue.length > 0) markQueue.shift();
            break;
          case 'stop':
            if (openAi.readyState === WebSocket.OPEN) openAi.close();
            break;
          default:
            break;
        }
      } catch {
        call.error();
      }
    });

    twilio.on('close', () => {
      if (openAi.readyState === WebSocket.OPEN) openAi.close();
      else if (openAi.readyState === WebSocket.CONNECTING) openAi.terminate();
    });
    openAi.on('error', call.error);
  });
}
