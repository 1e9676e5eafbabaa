// ModelConnection against the local model over real loopback sockets.
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectModel, type ModelConnection } from '../../src/model/client.js';
import { startLocalModel, type LocalModel } from '../../src/model/local/index.js';
import { appendBytes, burst, deltaAudio, pcmBytes, pcmFromBytes, record, streamAudio } from './helpers.js';

let model: LocalModel;
const links: ModelConnection[] = [];
const base = { deltaMs: 100, speed: Infinity, greeting: 'tone' } as const;

beforeAll(async () => {
  model = await startLocalModel({ ...base, apiKey: 'sk-test' });
});
afterAll(async () => {
  await model.close();
});
afterEach(() => {
  for (const l of links.splice(0)) l.close();
  for (const k of Object.keys(model.options)) delete (model.options as any)[k];
  Object.assign(model.options, base, { apiKey: 'sk-test' });
});

function open(opts: Partial<Parameters<typeof connectModel>[0]> = {}): ModelConnection {
  const link = connectModel({ apiKey: 'sk-test', baseURL: model.url, model: 'gpt-realtime', session: { format: 'pcmu' }, ...opts });
  links.push(link);
  return link;
}

describe('session handshake', () => {
  it('sends the GA session.update with the bearer key and no beta header, and is ready on session.updated', async () => {
    const index = model.sessions.length;
    const link = open({ session: { format: 'pcmu', voice: 'cedar', instructions: 'hi' } });
    const rec = record(link);
    await link.ready;
    const s = await model.session(index);
    expect(s.model).toBe('gpt-realtime');
    expect(s.headers.authorization).toBe('Bearer sk-test');
    expect(s.headers['openai-beta']).toBeUndefined();
    const update = await s.waitFor('session.update');
    expect((update.session as any).type).toBe('realtime');
    expect((update.session as any).audio.input.format).toEqual({ type: 'audio/pcmu' });
    expect(s.inFormat).toBe('pcmu');
    expect(s.outFormat).toBe('pcmu');
    expect(rec.events.map((e) => e.type)).toEqual(['session.created', 'session.updated']);
    expect(link.session?.session).toMatchObject({ audio: { output: { voice: 'cedar' } }, instructions: 'hi' });
  });

  it('rejects ready when the server kept PCM 24 kHz (beta field names silently ignored)', async () => {
    const link = open({
      session: { format: 'pcmu' },
      sessionUpdate: { type: 'session.update', session: { type: 'realtime', input_audio_format: 'g711_ulaw', output_audio_format: 'g711_ulaw' } },
    });
    const rec = record(link);
    await expect(link.ready).rejects.toThrow(/format mismatch.*audio\/pcmu.*audio\/pcm/);
    const closed = await rec.closed();
    expect(closed.reason).toMatch(/format mismatch/);
  });

  it('rejects ready when the server refuses beta field names with an error event', async () => {
    model.options.unknownSessionFields = 'error';
    const link = open({ sessionUpdate: { type: 'session.update', session: { type: 'realtime', voice: 'alloy' } } });
    await expect(link.ready).rejects.toThrow(/Unknown parameter: 'session.voice'/);
  });

  it('rejects ready when session.update lacks session.type (the beta shape)', async () => {
    const link = open({ sessionUpdate: { type: 'session.update', session: { input_audio_format: 'g711_ulaw' } } });
    await expect(link.ready).rejects.toThrow(/session\.type.*missing_required_parameter/);
  });

  it('times out when session.updated never comes, and closes the socket', async () => {
    model.options.noSessionUpdated = true;
    const index = model.sessions.length;
    const link = open({ readyTimeoutMs: 300 });
    const rec = record(link);
    await expect(link.ready).rejects.toThrow(/not ready within 300 ms/);
    expect((await rec.closed()).reason).toMatch(/not ready within 300 ms/);
    await model.sessions[index].waitClosed();
  });
  it('closes the call when a later session.updated changes the formats', async () => {
    const link = open({ session: { format: 'pcm24k' } });
    const rec = record(link);
    await link.ready;
    link.send({ type: 'session.update', session: { type: 'realtime', audio: { output: { format: { type: 'audio/pcmu' } } } } });
    const closed = await rec.closed();
    expect(closed.reason).toMatch(/format mismatch.*output format is \{"type":"audio\/pcmu"\}/);
  });
});

describe('faults before the session', () => {
  it('reports a refused connection through ready and onClose (once)', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as any).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const link = connectModel({ apiKey: 'k', baseURL: `http://127.0.0.1:${port}/v1`, session: { format: 'pcmu' } });
    const rec = record(link);
    await expect(link.ready).rejects.toThrow(/ECONNREFUSED/);
    await rec.closed();
    await new Promise((r) => setTimeout(r, 20));
    expect(rec.closes).toHaveLength(1);
    expect(rec.closes[0].code).toBe(1006);
    expect(rec.closes[0].reason).toMatch(/ECONNREFUSED/);
  });

  it('reports a rejected upgrade with its HTTP status and body', async () => {
    model.options.rejectUpgrade = 429;
    const link = open();
    await expect(link.ready).rejects.toThrow(/HTTP 429.*scripted_rejection/);
  });

  it('reports a wrong API key as HTTP 401', async () => {
    const link = open({ apiKey: 'sk-wrong' });
    await expect(link.ready).rejects.toThrow(/HTTP 401.*invalid_api_key/);
  });

  it('sees the 4000 close a GA server gives a beta-header client', async () => {
    const link = open({ headers: { 'OpenAI-Beta': 'realtime=v1' } });
    const rec = record(link);
    await expect(link.ready).rejects.toThrow(/4000/);
    expect((await rec.closed()).code).toBe(4000);
  });

  it('rejects ready when closed by the bridge before the session is ready', async () => {
    const link = open();
    link.close();
    await expect(link.ready).rejects.toThrow(/closed by the bridge/);
  });
});

describe('audio both ways', () => {
  it('delivers appended bytes intact even when the caller reuses its buffer right after sendRaw', async () => {
    const index = model.sessions.length;
    const link = open({ session: { format: 'pcm24k', turnDetection: null } });
    await link.ready;
    const s = await model.session(index);
    // One scratch buffer, rewritten for every message, as the WASM path does.
    const scratch = new Uint8Array(4096);
    const expected: number[] = [];
    for (let k = 0; k < 200; k++) {
      const pcm = new Int16Array(480);
      for (let i = 0; i < pcm.length; i++) pcm[i] = ((k * 480 + i) * 7919) % 65536 - 32768;
      expected.push(...pcm);
      const msg = appendBytes(pcmBytes(pcm));
      scratch.set(msg, 100);
      link.sendRaw(scratch.subarray(100, 100 + msg.length));
      scratch.fill(0x41); // would corrupt the message if ws still referenced it
    }
    await s.waitFor('input_audio_buffer.append', () => true, 200);
    expect(Array.from(s.input())).toEqual(expected);
    expect(s.events.filter((e) => e.type === 'input_audio_buffer.append')).toHaveLength(200);
    expect(s.events[1]).toMatchObject({ type: 'input_audio_buffer.append', bytes: 960 });
  });

  it('hands deltas over raw (fast path) and everything else parsed; the echo is the utterance', async () => {
    const index = model.sessions.length;
    const link = open({ session: { format: 'pcm24k' } });
    const rec = record(link);
    await link.ready;
    // 500 ms silence, 600 ms tone, 500 ms silence: VAD onset at 500 ms, stop after 500 ms quiet.
    const pcm = burst(24000, 500, 600, 500);
    streamAudio(link, pcm, 'pcm24k');
    const started = await rec.next('input_audio_buffer.speech_started');
    expect(started.audio_start_ms).toBe(200); // onset 500 ms minus 300 ms prefix padding
    const stopped = await rec.next('input_audio_buffer.speech_stopped');
    expect(stopped.audio_end_ms).toBe(1600); // tone ends at 1100 ms, + 500 ms silence
    expect(stopped.item_id).toBe(started.item_id);
    await rec.next('input_audio_buffer.committed', (e) => e.item_id === started.item_id);
    const done = await rec.next('response.done');
    expect(done.response.status).toBe('completed');
    expect(rec.events.some((e) => e.type === 'response.output_audio.delta')).toBe(false);
    expect(link.stats.audioDeltas).toBe(rec.deltas.length);
    expect(link.stats.parseErrors).toBe(0);
    // 1400 ms of echo in 100 ms deltas
    expect(rec.deltas).toHaveLength(14);
    const echo = pcmFromBytes(deltaAudio(rec.deltas, done.response.id));
    expect(Array.from(echo)).toEqual(Array.from(pcm.subarray(200 * 24, 1600 * 24)));
    const order = rec.events.map((e) => e.type).filter((t) => t.startsWith('response.') && !t.includes('transcript'));
    expect(order).toEqual([
      'response.created', 'response.output_item.added', 'response.content_part.added',
      'response.output_audio.done', 'response.content_part.done', 'response.output_item.done', 'response.done',
    ]);
    const s = model.sessions[index];
    expect(s.responses[0]).toMatchObject({ source: 'echo', status: 'completed', deltas: 14 });
  });

  it('routes a delta whose "type" is not the first key raw too (parse fallback)', async () => {
    model.options.deltaTypeLast = true;
    const link = open({ session: { format: 'pcmu', turnDetection: null } });
    const rec = record(link);
    await link.ready;
    link.send({ type: 'response.create' });
    await rec.next('response.done');
    expect(rec.deltas).toHaveLength(8); // the 800 ms tone greeting
    expect(rec.deltas[0].subarray(0, 9).toString()).not.toBe('{"type":"');
    expect(deltaAudio(rec.deltas)).toHaveLength(6400); // 800 ms of mu-law at 8 kHz
  });

  it('passes mu-law through the echo unchanged', async () => {
    const link = open({ session: { format: 'pcmu' } });
    const rec = record(link);
    await link.ready;
    const pcm = burst(8000, 400, 500, 600);
    streamAudio(link, pcm, 'pcmu');
    const done = await rec.next('response.done');
    const started = rec.events.find((e) => e.type === 'input_audio_buffer.speech_started') as any;
    expect(started.audio_start_ms).toBe(100);
    const { encodeMulaw } = await import('../../src/dsp/g711.js');
    const sent = encodeMulaw(pcm);
    const echo = deltaAudio(rec.deltas, done.response.id);
    // from 100 ms (onset 400 - 300) to 1400 ms (tone end 900 + 500 silence)
    expect(Buffer.from(echo).equals(Buffer.from(sent.subarray(800, 11200)))).toBe(true);
  });
});

describe('faults during the call', () => {
  it('reports a socket dropped mid-response through onClose with 1006', async () => {
    model.options.dropAfterDeltas = 3;
    const link = open({ session: { format: 'pcmu', turnDetection: null } });
    const rec = record(link);
    await link.ready;
    link.send({ type: 'response.create' });
    const closed = await rec.closed();
    expect(closed.code).toBe(1006);
    expect(rec.deltas).toHaveLength(3);
  });

  it('reports a scripted close code', async () => {
    model.options.dropAfterMs = 50;
    model.options.dropCode = 1011;
    const link = open();
    const rec = record(link);
    await link.ready;
    const closed = await rec.closed();
    expect(closed.code).toBe(1011);
    expect(closed.reason).toMatch(/scripted drop/);
  });

  it('closes the link (not the process) when an event handler throws', async () => {
    const link = open({ session: { format: 'pcmu', turnDetection: null } });
    const rec = record(link);
    await link.ready;
    link.onAudioDelta = () => {
      throw new Error('bridge bug');
    };
    link.send({ type: 'response.create' });
    const closed = await rec.closed();
    expect(closed.reason).toMatch(/handler threw: bridge bug/);
  });

  it('drops sends after close instead of throwing', async () => {
    const link = open();
    const rec = record(link);
    await link.ready;
    link.close(1000, 'done');
    await rec.closed();
    link.sendRaw(appendBytes(new Uint8Array(160)));
    link.send({ type: 'response.cancel' });
    expect(link.stats.droppedSends).toBe(2);
    expect(link.bufferedAmount).toBeGreaterThanOrEqual(0);
  });
});
