// Barge-in decided by the bridge around the model's own turn-taking: a caller who talks while
// the answer is still being generated cancels it before any audio plays (and its audio never
// plays), and the model's speech_started is a barge-in only when the bot's echo cannot explain it.
import { afterEach, describe, expect, it } from 'vitest';
import { simulateCall } from '../../src/simulate/index.js';
import { delta, fixtureMulaw, fixturePcm, resample, scaled, startRig, tone, type Rig } from './harness.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('barge-in and the model\'s turn-taking', () => {
  it('a caller who starts talking while the model is still preparing its answer cancels it before any audio', async () => {
    const name = 'u1_pink_30db.wav';
    const bot = resample(fixturePcm('echo_bot_outbound.wav').slice(0, 8000), 8000, 24000);
    // The answer is created at once (greeting) but its audio only comes 1 s later: the caller's
    // onset (720 ms) falls in between.
    rig = await startRig({ GREETING: 'hi' }, { vadRms: 1e9, responseAudio: bot, firstAudioDelayMs: 1000 });
    // Audio of the cancelled response still on its way (sent before the model saw the cancel).
    void rig.local.session(0).then((s) => s.waitFor('response.cancel').then(() => {
      s.sendRaw(delta(s.responses[0].itemId, tone(200, 700)));
    }));
    const report = await simulateCall({ url: rig.wsUrl, caller: { mulaw: fixtureMulaw(name).slice(0, 1600 * 8) }, tailMs: 0 });
    const session = rig.local.sessions[0];
    await session.waitClosed();
    expect(session.events.filter((e) => e.type === 'response.cancel').length).toBe(1);
    expect(session.responses[0].status).toBe('cancelled');
    expect(session.responses[0].sentSamples).toBe(0);
    // Nothing was heard, so nothing is truncated.
    expect(session.events.filter((e) => e.type === 'conversation.item.truncate')).toEqual([]);
    expect(report.audioReceivedMs).toBe(0);
  });

  it('the model\'s speech_started barges in only when the bot\'s echo cannot be what it heard', async () => {
    const run = async (botDb: number) => {
      const bot = resample(scaled(fixturePcm('echo_bot_outbound.wav').slice(0, 1500 * 8), botDb), 8000, 24000);
      const r = await startRig({ GREETING: 'hi' }, { vadRms: 1e9, responseAudio: bot, speed: 1 });
      try {
        let sent = false;
        const report = await simulateCall({
          // A noisy line (pink noise at -35 dBFS) and a caller who says nothing our VAD hears.
          url: r.wsUrl, caller: { mulaw: fixtureMulaw('bed_pink.wav').slice(0, 1200 * 8) }, tailMs: 0,
          onMessage: (dir, at) => {
            if (dir !== 'out' || sent || at < 600) return;
            sent = true;
            // The model's VAD fires at 600 ms.
            const s = r.local.sessions[0];
            s.sendEvent({ type: 'input_audio_buffer.speech_started', audio_start_ms: 300, item_id: 'item_user' });
          },
        });
        await r.local.sessions[0].waitClosed();
        return { report, events: r.local.sessions[0].events.map((e) => e.type) };
      } finally {
        await r.close();
      }
    };
    // A bot at -20 dBFS: its echo could be what the model heard, so the bot keeps talking.
    const loud = await run(0);
    expect(loud.report.clearsReceived).toBe(0);
    expect(loud.events).not.toContain('response.cancel');
    // A bot 40 dB quieter cannot echo above the line noise: the model heard the caller.
    expect(loud.events).not.toContain('conversation.item.truncate');
    const quiet = await run(-40);
    expect(quiet.report.clearsReceived).toBe(1);
    expect(quiet.events).toContain('response.cancel');
    expect(quiet.events).toContain('conversation.item.truncate');
  });

  it('after an answer played to its end, a caller talking over the next one in preparation cancels only that one', async () => {
    rig = await startRig({}, { vadRms: 1e9, greeting: 'none' });
    const sessionP = rig.local.session(0);
    const ids = (r: string, i: string) => ({ response_id: r, item_id: i, output_index: 0, content_index: 0 });
    const script: [number, (s: import('../../src/model/local/index.js').LocalSession) => void][] = [
      // 100 ms: a first answer, 200 ms of audio, complete.
      [100, (s) => {
        s.sendEvent({ type: 'response.created', response: { id: 'resp_a', object: 'realtime.response', status: 'in_progress', output: [] } });
        s.sendEvent({ type: 'response.output_item.added', response_id: 'resp_a', output_index: 0, item: { id: 'item_a', type: 'message', role: 'assistant' } });
        s.sendRaw(delta('item_a', tone(200, 440), 'resp_a'));
        s.sendEvent({ type: 'response.output_audio.done', ...ids('resp_a', 'item_a') });
        s.sendEvent({ type: 'response.done', response: { id: 'resp_a', object: 'realtime.response', status: 'completed', output: [] } });
      }],
      // 500 ms: the next answer is being generated, no audio yet.
      [500, (s) => {
        s.sendEvent({ type: 'response.created', response: { id: 'resp_b', object: 'realtime.response', status: 'in_progress', output: [] } });
        s.sendEvent({ type: 'response.output_item.added', response_id: 'resp_b', output_index: 0, item: { id: 'item_b', type: 'message', role: 'assistant' } });
      }],
      // 1000 ms (after the caller's onset at 720 ms): its audio arrives anyway.
      [1000, (s) => s.sendRaw(delta('item_b', tone(200, 880), 'resp_b'))],
    ];
    const report = await simulateCall({
      url: rig.wsUrl, caller: { mulaw: fixtureMulaw('u1_pink_30db.wav').slice(0, 1400 * 8) }, tailMs: 0,
      onMessage: (dir, at) => {
        while (dir === 'out' && script.length && at >= script[0][0]) {
          const step = script.shift()![1];
          void sessionP.then(step);
        }
      },
    });
    const session = await sessionP;
    await session.waitClosed();
    const types = session.events.map((e) => e.type);
    expect(types.filter((t) => t === 'response.cancel').length).toBe(1);
    // item_a was heard to its end: nothing to truncate, nothing to clear.
    expect(types).not.toContain('conversation.item.truncate');
    expect(report.clearsReceived).toBe(0);
    // The caller heard item_a (200 ms) and nothing of item_b.
    expect(report.audioReceivedMs).toBe(200);
  });
});
