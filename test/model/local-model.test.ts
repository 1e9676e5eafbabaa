// The local model's protocol behaviour, driven by a ModelConnection over loopback.
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectModel, type ModelConnection } from '../../src/model/client.js';
import { startLocalModel, type LocalModel } from '../../src/model/local/index.js';
import { buildSessionUpdate, type SessionOptions } from '../../src/model/protocol.js';
import { burst, deltaAudio, pcmBytes, pcmFromBytes, record, streamAudio, type Recorder } from './helpers.js';

let model: LocalModel;
const links: ModelConnection[] = [];
const base = { deltaMs: 100, speed: Infinity } as const;

beforeAll(async () => {
  model = await startLocalModel({ ...base });
});
afterAll(async () => {
  await model.close();
});
afterEach(() => {
  for (const l of links.splice(0)) l.close();
  for (const k of Object.keys(model.options)) delete (model.options as any)[k];
  Object.assign(model.options, base);
});

async function open(session: SessionOptions = { format: 'pcmu', turnDetection: null }) {
  const index = model.sessions.length;
  const link = connectModel({ apiKey: 'k', baseURL: model.url, session });
  links.push(link);
  const rec = record(link);
  await link.ready;
  const s = await model.session(index);
  return { link, rec, s };
}

/** A response.create answered in full; returns its response.done. */
async function completeResponse(link: ModelConnection, rec: Recorder) {
  const before = rec.events.length;
  link.send({ type: 'response.create' });
  return rec.next('response.done', (e) => rec.events.indexOf(e) >= before);
}

function errors(rec: Recorder): any[] {
  return rec.events.filter((e) => e.type === 'error').map((e: any) => e.error);
}

describe('responses', () => {
  it('greets with an 800 ms tone on response.create when there is nothing to echo', async () => {
    const { link, rec, s } = await open({ format: 'pcm24k', turnDetection: null });
    const done = await completeResponse(link, rec);
    expect(done.response.status).toBe('completed');
    const audio = pcmFromBytes(deltaAudio(rec.deltas));
    expect(audio).toHaveLength(800 * 24);
    expect(Math.max(...audio.subarray(9000, 10000))).toBeGreaterThan(5000); // a tone, not silence
    expect(s.responses[0]).toMatchObject({ source: 'greeting', trigger: 'create', sentSamples: 800 * 24 });
  });

  it('plays fixed response audio instead of the echo, converted to the output format', async () => {
    model.options.responseAudio = burst(24000, 0, 300, 0);
    const { link, rec } = await open({ format: 'pcmu', turnDetection: null });
    await completeResponse(link, rec);
    expect(deltaAudio(rec.deltas)).toHaveLength(300 * 8);
    expect(rec.deltas).toHaveLength(3);
  });

  it('uses the configured delta size', async () => {
    model.options.deltaMs = 40;
    const { link, rec } = await open({ format: 'pcmu', turnDetection: null });
    await completeResponse(link, rec);
    expect(rec.deltas).toHaveLength(20);
    expect(rec.deltas.map((d) => Buffer.from(JSON.parse(d.toString()).delta, 'base64').length)).toEqual(new Array(20).fill(320));
  });

  it('interleaves transcript deltas and sends rate_limits.updated after response.created', async () => {
    model.options.transcript = 'hello there caller';
    model.options.rateLimits = true;
    const { link, rec } = await open();
    await completeResponse(link, rec);
    const types = rec.events.map((e) => e.type);
    expect(types.indexOf('rate_limits.updated')).toBe(types.indexOf('response.created') + 1);
    const words = rec.events.filter((e) => e.type === 'response.output_audio_transcript.delta').map((e: any) => e.delta);
    expect(words.join('')).toBe('hello there caller');
    const tdone: any = rec.events.find((e) => e.type === 'response.output_audio_transcript.done');
    expect(tdone.transcript).toBe('hello there caller');
  });

  it('refuses a second response.create while one is active', async () => {
    model.options.speed = 1;
    const { link, rec } = await open();
    link.send({ type: 'response.create' });
    await rec.next('response.created');
    link.send({ type: 'response.create', event_id: 'evt_dup' });
    const err = await rec.next('error');
    expect(err.error).toMatchObject({ code: 'conversation_already_has_active_response', event_id: 'evt_dup' });
  });

  it('answers a caller turn with a function call, then the echo after the tool output', async () => {
    model.options.functionCall = { name: 'lookup', arguments: { id: 42 } };
    const { link, rec, s } = await open({ format: 'pcmu' });
    streamAudio(link, burst(8000, 300, 400, 600), 'pcmu');
    const args = await rec.next('response.function_call_arguments.done');
    expect(args).toMatchObject({ name: 'lookup', arguments: '{"id":42}' });
    const itemDone = await rec.next('response.output_item.done');
    expect(itemDone.item).toMatchObject({ type: 'function_call', call_id: args.call_id, arguments: '{"id":42}' });
    await rec.next('response.done');
    expect(rec.deltas).toHaveLength(0);

    link.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: 'call_unknown', output: '{}' } });
    expect((await rec.next('error')).error.message).toMatch(/call_unknown/);
    link.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: args.call_id, output: '{"ok":true}' } });
    await rec.next('conversation.item.done', (e) => e.item.type === 'function_call_output');
    const done = await completeResponse(link, rec);
    expect(done.response.status).toBe('completed');
    expect(deltaAudio(rec.deltas).length).toBe((300 + 400 + 500) * 8); // onset 300 ms - 300 ms padding .. tone end + 500 ms
    expect(s.responses.map((r) => r.kind)).toEqual(['function_call', 'audio']);
    expect(s.events.find((e) => e.type === 'conversation.item.create' && (e.item as any).call_id === args.call_id)).toBeTruthy();
  });
});

describe('cancel', () => {
  it('stops the stream with response.done cancelled, then errors with nothing active', async () => {
    model.options.speed = 2;
    const { link, rec, s } = await open();
    let cancelled = false;
    link.onAudioDelta = (m) => {
      rec.deltas.push(Buffer.from(m));
      if (!cancelled) {
        cancelled = true;
        link.send({ type: 'response.cancel' });
      }
    };
    link.send({ type: 'response.create' });
    const done = await rec.next('response.done');
    expect(done.response.status).toBe('cancelled');
    expect(done.response.status_details).toMatchObject({ reason: 'client_cancelled' });
    expect(done.response.output[0].status).toBe('incomplete');
    const after = rec.deltas.length;
    expect(after).toBeLessThan(8);
    link.send({ type: 'response.cancel', event_id: 'evt_c2' });
    const err = await rec.next('error');
    expect(err.error).toMatchObject({ code: 'response_cancel_not_active', event_id: 'evt_c2' });
    expect(rec.deltas.length).toBe(after);
    expect(s.responses[0].status).toBe('cancelled');
  });

  it('cancels an active response on caller speech when interrupt_response is on (server VAD)', async () => {
    model.options.speed = 1;
    const { link, rec, s } = await open({ format: 'pcmu' });
    link.send({ type: 'response.create' });
    await rec.next('response.created');
    streamAudio(link, burst(8000, 0, 200, 0), 'pcmu');
    const started = await rec.next('input_audio_buffer.speech_started');
    const done = await rec.next('response.done');
    expect(rec.events.indexOf(done)).toBeGreaterThan(rec.events.indexOf(started));
    expect(done.response.status_details).toMatchObject({ type: 'cancelled', reason: 'turn_detected' });
    expect(s.responses[0].status).toBe('cancelled');
  });
});

describe('truncate', () => {
  async function withItem() {
    const o = await open();
    const done = await completeResponse(o.link, o.rec); // 800 ms greeting item
    return { ...o, itemId: done.response.output[0].id as string };
  }

  it('accepts audio_end_ms within the item and records it', async () => {
    const { link, rec, s, itemId } = await withItem();
    link.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 300 });
    const ev = await rec.next('conversation.item.truncated');
    expect(ev).toMatchObject({ item_id: itemId, audio_end_ms: 300 });
    expect(s.truncations).toEqual([{ item_id: itemId, content_index: 0, audio_end_ms: 300, item_audio_ms: 800 }]);
    // the item is now 300 ms long
    link.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 301 });
    expect((await rec.next('error')).error.message).toBe('Audio content of 300ms is already shorter than 301ms');
  });

  it('accepts the full length and rejects one ms more, with the real server message', async () => {
    const { link, rec, itemId } = await withItem();
    link.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 801, event_id: 'evt_t' });
    const err = await rec.next('error');
    expect(err.error).toMatchObject({ message: 'Audio content of 800ms is already shorter than 801ms', event_id: 'evt_t', param: 'audio_end_ms' });
    link.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 800 });
    await rec.next('conversation.item.truncated');
  });

  it('rejects negative, fractional, unknown-item, user-item and wrong-content-index truncations', async () => {
    const { link, rec, s, itemId } = await withItem();
    const bad = [
      { item_id: itemId, content_index: 0, audio_end_ms: -1 },
      { item_id: itemId, content_index: 0, audio_end_ms: 12.5 },
      { item_id: 'item_nope', content_index: 0, audio_end_ms: 0 },
      { item_id: itemId, content_index: 1, audio_end_ms: 0 },
    ];
    for (const b of bad) link.send({ type: 'conversation.item.truncate', ...b });
    await rec.next('error', () => errors(rec).length === 4);
    const errs = errors(rec);
    expect(errs[0]).toMatchObject({ code: 'integer_below_min_value', param: 'audio_end_ms' });
    expect(errs[1]).toMatchObject({ param: 'audio_end_ms' });
    expect(errs[2].message).toMatch(/item_nope/);
    expect(errs[3]).toMatchObject({ param: 'content_index' });
    expect(s.truncations).toEqual([]);
  });

  it('rejects truncating a caller item', async () => {
    const { link, rec } = await open({ format: 'pcmu', turnDetection: null });
    streamAudio(link, burst(8000, 0, 200, 0), 'pcmu');
    link.send({ type: 'input_audio_buffer.commit' });
    const committed = await rec.next('input_audio_buffer.committed');
    link.send({ type: 'conversation.item.truncate', item_id: committed.item_id, content_index: 0, audio_end_ms: 0 });
    expect((await rec.next('error')).error.message).toMatch(/Only model output audio/);
  });
});

describe('input buffer', () => {
  it('refuses to commit under 100 ms, commits otherwise, and clears', async () => {
    const { link, rec, s } = await open();
    streamAudio(link, new Int16Array(8 * 60), 'pcmu');
    link.send({ type: 'input_audio_buffer.commit', event_id: 'evt_k' });
    const err = await rec.next('error');
    expect(err.error).toMatchObject({ code: 'input_audio_buffer_commit_empty', event_id: 'evt_k' });
    expect(err.error.message).toMatch(/only has 60.00ms/);
    streamAudio(link, new Int16Array(8 * 60), 'pcmu');
    link.send({ type: 'input_audio_buffer.commit' });
    await rec.next('input_audio_buffer.committed');
    streamAudio(link, new Int16Array(8 * 200), 'pcmu');
    link.send({ type: 'input_audio_buffer.clear' });
    await rec.next('input_audio_buffer.cleared');
    link.send({ type: 'input_audio_buffer.commit' });
    await rec.next('error', () => errors(rec).length === 2);
    expect(s.input()).toHaveLength(8 * 320);
    expect(s.inputRate).toBe(8000);
  });

  it('converts between formats: PCM 24 kHz in, mu-law out', async () => {
    // A raw ws client: ModelConnection insists on one format both ways.
    const index = model.sessions.length;
    const ws = new WebSocket(`${model.url.replace('http', 'ws')}/realtime?model=m`);
    const got: any[] = [];
    ws.on('message', (d) => got.push(JSON.parse(d.toString())));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify(buildSessionUpdate({ format: 'pcm24k' })).replace('"output":{"format":{"type":"audio/pcm","rate":24000}', '"output":{"format":{"type":"audio/pcmu"}'));
    const s = await model.session(index);
    await s.waitForSent('session.updated');
    expect([s.inFormat, s.outFormat]).toEqual(['pcm24k', 'pcmu']);
    const pcm = burst(24000, 300, 300, 600);
    for (let off = 0; off < pcm.length; off += 480) {
      ws.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: pcmBytes(pcm.subarray(off, off + 480)).toString('base64') }));
    }
    const done = await s.waitForSent('response.done');
    const audio = Buffer.concat(got.filter((e) => e.type === 'response.output_audio.delta').map((e) => Buffer.from(e.delta, 'base64')));
    // utterance 0..1100 ms, at 8 kHz
    expect(audio).toHaveLength(1100 * 8);
    expect((done.response as any).status).toBe('completed');
    ws.close();
  });
});

describe('errors and faults', () => {
  it('answers unknown event types and bad JSON with error events and stays up', async () => {
    const { link, rec } = await open();
    link.send({ type: 'response.explode', event_id: 'evt_x' });
    link.sendRaw(Buffer.from('{not json'));
    await rec.next('error', () => errors(rec).length === 2);
    const [a, b] = errors(rec);
    expect(a).toMatchObject({ code: 'invalid_value', param: 'type', event_id: 'evt_x' });
    expect(a.message).toMatch(/response.explode/);
    expect(b.code).toBe('invalid_json');
    await completeResponse(link, rec);
  });

  it('errors at the scripted client event instead of handling it', async () => {
    model.options.errorAt = { event: 2, code: 'server_error', message: 'boom' };
    const { link, rec, s } = await open();
    link.send({ type: 'response.create', event_id: 'evt_2' });
    const err = await rec.next('error');
    expect(err.error).toMatchObject({ code: 'server_error', message: 'boom', event_id: 'evt_2' });
    expect(s.responses).toHaveLength(0);
    await completeResponse(link, rec);
  });

  it('fails a response after N deltas with status failed', async () => {
    model.options.failAfterDeltas = 2;
    const { link, rec } = await open();
    const done = await completeResponse(link, rec);
    expect(done.response.status).toBe('failed');
    expect(done.response.status_details.error.type).toBe('server_error');
    expect(rec.deltas).toHaveLength(2);
  });

  it('keeps a rejected session.update from changing the session', async () => {
    const { link, rec, s } = await open();
    link.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { format: { type: 'audio/pcm', rate: 16000 } }, output: { format: { type: 'audio/pcm', rate: 24000 } } } } });
    const err = await rec.next('error');
    expect(err.error.param).toBe('session.audio.input.format');
    expect(s.inFormat).toBe('pcmu');
    expect(s.outFormat).toBe('pcmu');
  });

  it('records the upgrade and answers a wrong path with 404', async () => {
    const wrong = connectModel({ apiKey: 'k', baseURL: model.url.replace('/v1', '/nope'), session: { format: 'pcmu' } });
    await expect(wrong.ready).rejects.toThrow(/HTTP 404/);
    expect(model.upgrades.some((u) => u.url.startsWith('/nope/realtime') && u.status === 404)).toBe(true);
    const { s } = await open();
    expect(model.upgrades.some((u) => u.url.startsWith('/v1/realtime?model=') && u.status === 101)).toBe(true);
    expect(s.model).toBe('gpt-realtime');
  });
});

describe('as a long-running demo server (record: false)', () => {
  it('keeps no per-event record and forgets closed sessions', async () => {
    const demo = await startLocalModel({ speed: Infinity, record: false });
    try {
      const link = connectModel({ apiKey: 'k', baseURL: demo.url, session: { format: 'pcmu' } });
      const rec = record(link);
      await link.ready;
      const s = await demo.session(0);
      streamAudio(link, burst(8000, 300, 300, 600), 'pcmu');
      const done = await rec.next('response.done');
      expect(done.response.status).toBe('completed');
      expect(deltaAudio(rec.deltas)).toHaveLength(1100 * 8); // still echoes
      expect(s.events).toHaveLength(0);
      expect(s.sent).toHaveLength(0);
      expect(s.input()).toHaveLength(0);
      link.close();
      await s.waitClosed();
      await new Promise((r) => setImmediate(r));
      expect(demo.sessions).toHaveLength(0);
    } finally {
      await demo.close();
    }
  });
});
