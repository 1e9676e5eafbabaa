// Barge-in over real sockets, measured in frames: the caller talks over the bot; on the very
// inbound frame where the local VAD declares onset the bridge sends `clear` to Twilio and
// response.cancel + conversation.item.truncate to the model; the truncation says what the caller
// actually heard; audio of the cut item arriving late never plays, and the next item does.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeMulaw } from '../../src/dsp/g711.js';
import { Vad } from '../../src/dsp/vad.js';
import { simulateCall } from '../../src/simulate/index.js';
import { delta, fixtureInfo, fixtureMulaw, fixturePcm, FRAME, resample, scaled, startRig, tone, type Rig } from './harness.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('barge-in', () => {
  it('on the onset frame: clear + response.cancel + truncate(audio_end_ms = what played); late deltas dropped', async () => {
    const name = 'u1_pink_30db.wav';
    const info = fixtureInfo(name);
    const callerCodes = fixtureMulaw(name);
    // The bot talks for 3.2 s from the start of the call, 30 dB under the caller: no echo can be
    // mistaken for the caller here, so the VAD runs with its normal parameters (the echo case is
    // echo.test.ts).
    const bot = resample(scaled(fixturePcm('echo_bot_outbound.wav'), -30), 8000, 24000);
    rig = await startRig({ GREETING: 'hi' }, { vadRms: 1e9, responseAudio: bot, speed: 2 });
    const cfg = rig.config;

    // What the VAD declares on this audio with those parameters: the frame the bridge must act on.
    const vad = new Vad({ thresholdDb: cfg.vadThresholdDb, minSpeechMs: cfg.vadMinSpeechMs, hangoverMs: cfg.vadHangoverMs });
    const pcm = fixturePcm(name);
    let onsetFrame = -1;
    for (let k = 0; k * FRAME < pcm.length && onsetFrame < 0; k++) if (vad.process(pcm.subarray(k * FRAME, (k + 1) * FRAME)) & 2) onsetFrame = k;
    vad.free();
    // ...which is within a frame of the fixture's reference onset plus the VAD's confirmation.
    const onsetEndMs = (onsetFrame + 1) * 20;
    expect(onsetEndMs).toBeGreaterThanOrEqual(info.onsetMs!);
    expect(onsetEndMs - (info.onsetMs! + cfg.vadMinSpeechMs)).toBeLessThanOrEqual(20);

    const sessionP = rig.local.session(0);
    const inLog: { at: number; event: string; bytes: number }[] = [];
    let newItemSent = false;
    const lateTone = tone(300, 1000);
    const nextTone = tone(200, 500);
    void sessionP.then((s) => s.waitFor('response.cancel').then(() => {
      // The real API keeps streaming for a moment after response.cancel: late deltas of the cut item.
      const itemId = s.responses[0].itemId;
      for (let i = 0; i < 3; i++) s.sendRaw(delta(itemId, lateTone.subarray(i * 2400, (i + 1) * 2400)));
    }));
    const report = await simulateCall({
      url: rig.wsUrl, caller: { mulaw: callerCodes }, tailMs: 600,
      onMessage: (dir, at, text) => {
        if (dir === 'in') {
          const ev = JSON.parse(text);
          inLog.push({ at, event: ev.event, bytes: ev.event === 'media' ? Buffer.byteLength(ev.media.payload, 'base64') : 0 });
        } else if (!newItemSent && at >= 2900) {
          // After the caller stopped talking: a new item must play normally.
          newItemSent = true;
          void sessionP.then((s) => {
            s.sendRaw(delta('item_next', nextTone));
            s.sendEvent({ type: 'response.output_audio.done', response_id: 'resp_next', item_id: 'item_next', output_index: 0, content_index: 0 });
          });
        }
      },
    });
    const session = await sessionP;
    await session.waitClosed();

    // Model side, in protocol order: the append of the onset frame, then cancel and truncate
    // back to back, before the next frame's append.
    const ev = session.events;
    const cancelAt = ev.findIndex((e) => e.type === 'response.cancel');
    expect(cancelAt).toBeGreaterThan(0);
    const appendsBefore = ev.slice(0, cancelAt).filter((e) => e.type === 'input_audio_buffer.append').length;
    expect(appendsBefore - 1).toBe(onsetFrame);
    expect(ev[cancelAt + 1].type).toBe('conversation.item.truncate');
    expect(ev.filter((e) => e.type === 'response.cancel').length).toBe(1);
    const trunc = ev[cancelAt + 1] as unknown as { item_id: string; audio_end_ms: number; content_index: number };
    expect(trunc.item_id).toBe(session.responses[0].itemId);
    expect(trunc.content_index).toBe(0);
    expect(session.truncations.length).toBe(1); // accepted: within the item's audio, an integer

    // Twilio side: one clear; the bot's run ends there; what it had played is what was truncated.
    expect(report.clearsReceived).toBe(1);
    const run = report.playback[0];
    expect(run.endedByClear).toBe(true);
    const playedMs = run.endMs - run.startMs;
    const clearAt = inLog.find((m) => m.event === 'clear')!.at;
    const framesBeforeClear = Math.floor(clearAt / 20);
    // The bridge decided when the onset frame reached it; the caller kept hearing the bot until
    // the clear reached Twilio. audio_end_ms is never more than what played, and short of it by
    // no more than that round trip (20 ms on this loopback unless the machine stalled).
    const roundTrip = clearAt - onsetEndMs;
    expect(playedMs - trunc.audio_end_ms).toBeGreaterThanOrEqual(-1);
    expect(playedMs - trunc.audio_end_ms).toBeLessThanOrEqual(Math.max(20, roundTrip + 1));

    // After the clear: none of the late deltas (300 ms of 1 kHz), then exactly the new item (200 ms).
    const mediaAfter = inLog.filter((m) => m.event === 'media' && m.at > clearAt);
    const msAfter = mediaAfter.reduce((n, m) => n + m.bytes, 0) / 8;
    expect(msAfter).toBe(200);
    const nextRun = report.playback[1];
    expect(nextRun.startMs).toBeGreaterThanOrEqual(2900);
    const heardNext = report.heardMulaw.subarray(nextRun.startMs * 8, nextRun.endMs * 8);
    expect(Buffer.compare(Buffer.from(heardNext), Buffer.from(encodeMulaw(resample(nextTone, 24000, 8000))))).toBe(0);
    expect(report.violations).toBe(0);

    console.log(`[barge-in] ${name}: reference onset ${info.onsetMs} ms, VAD onset frame ${onsetFrame} (audio to ${onsetEndMs} ms), ` +
      `bridge acted after append #${appendsBefore}; clear received at call time ${clearAt.toFixed(1)} ms (${framesBeforeClear} frames sent), ` +
      `simulator latency ${report.bargeInLatencyMs?.toFixed(1)} ms; audio_end_ms ${trunc.audio_end_ms} vs played ${playedMs.toFixed(1)} ms`);
  });
});
