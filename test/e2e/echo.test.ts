// Speakerphone echo: the inbound track carries the bot's own voice, delayed and attenuated, while
// the bridge is playing that very audio. The bridge must not barge in on it; a real caller
// talking over it must still barge in within two frames of the VAD's normal detection.
//
// The bot's audio is the echo fixture's own outbound track (the local model's responseAudio),
// started when the simulator's call time reaches the fixture's botStartMs, so the echo in the
// fixture lines up with what the bridge actually plays (to within the loopback delay, printed).
//
// Trade-off behind the settings (offline, same VAD kernel: `npx tsx test/e2e/tools/echo-sweep.ts`;
// false barge-ins over the 2 echo-only fixtures; caller over echo: detection frame minus the normal
// (no bot) detection frame, per fixture; no-echo: the 30 noisy u* utterances with a -20 dBFS bot
// playing and no echo, missed / median / max ms after the reference onset; no bot at all: 0/30, 40/100):
//   bot-mode rule                                   false  caller over echo   no-echo barge-in
//   flag (bot audible + tail), floor+22 dB, 40 ms      5    false before onset  9/30  80/260
//   flag, floor+32 dB, 150 ms (config defaults)        0    +9, +10            27/30 340/340
//   flag, floor+32 dB, 20 ms                           0    +3, +3             21/30  80/100
//   echo gate, margin 10 dB, 20 ms, window 400 ms      2    false before onset  0/30  80/100
//   echo gate, margin  8 dB, 20 ms, window 400 ms      0    +1, +1              0/30  80/100   <- chosen
//   echo gate, margin  6 dB, 20 ms, window 400 ms      0    +1, +1              0/30  80/120
//   echo gate, margin  8 dB, 40 ms, window 400 ms      0    +2, +2              0/30 100/200
//   echo gate, margin  8 dB, 20 ms, window 500 ms      0    +2, +2              0/30  80/100
// A floor-relative bot threshold cannot work: the echo's level follows the bot's, not the line
// noise, so a threshold high enough for the echo on a quiet line is out of reach of a caller on a
// noisy one. The gate costs ~40 ms on a loud bot with no echo at all (it assumes the worst echo
// return loss it tolerates, 8 dB + margin, since it does not measure the actual one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Vad } from '../../src/dsp/vad.js';
import type { LocalSession } from '../../src/model/local/index.js';
import { simulateCall, type SimReport } from '../../src/simulate/index.js';
import { echoCases } from './tools/echo-sweep.js';
import { fixtureInfo, fixtureMulaw, fixturePcm, FRAME, resample, startRig, type Rig } from './harness.js';

const rigs: Rig[] = [];
afterAll(async () => {
  await Promise.all(rigs.splice(0).map((r) => r.close()));
});

// The bridge settings under test (VAD_BOT_MIN_SPEECH_MS: the echo gate needs no longer
// confirmation than the normal one; see the table above).
const ENV = { GREETING: '', VAD_BOT_MIN_SPEECH_MS: '20', ECHO_TAIL_MS: '400' };

interface EchoRun {
  file: string;
  report: SimReport;
  session: LocalSession;
  rig: Rig;
  botStartMs: number;
}

/** One call on its own bridge + local model; `untilMs` crops the fixture (call time). */
async function runEcho(file: string, modelVad: boolean, untilMs = Infinity, env: Record<string, string> = {}, burst = false): Promise<EchoRun> {
  const info = fixtureInfo(file);
  const bot = resample(fixturePcm('echo_bot_outbound.wav'), 8000, 24000);
  // With the model's own VAD on, it hears the echo too, and must not cut the bot off either.
  const rig = await startRig({ ...ENV, ...env }, {
    greeting: 'none', responseAudio: bot, ...(modelVad ? {} : { vadRms: 1e9 }), ...(burst ? { speed: Infinity, deltaMs: 500 } : {}),
  });
  rigs.push(rig);
  const sessionP = rig.local.session(0);
  let triggered = false;
  const report = await simulateCall({
    url: rig.wsUrl, caller: { mulaw: fixtureMulaw(file).slice(0, untilMs * 8) }, tailMs: 0,
    onMessage: (dir, at) => {
      if (dir === 'out' && !triggered && at >= info.botStartMs!) {
        triggered = true;
        // The bot starts talking now (as if answering): its audio reaches the caller at once.
        void sessionP.then((s) => (s as unknown as { startResponse(trigger: string): void }).startResponse('create'));
      }
    },
  });
  const session = await sessionP;
  await session.waitClosed();
  return { file, report, session, rig, botStartMs: report.playback[0]?.startMs ?? NaN };
}

function normalOnsetFrame(rig: Rig, file: string): number {
  const c = echoCases().find((x) => file.startsWith(x.name))!;
  const cfg = rig.config;
  const vad = new Vad({ thresholdDb: cfg.vadThresholdDb, minSpeechMs: cfg.vadMinSpeechMs, hangoverMs: cfg.vadHangoverMs });
  try {
    for (let k = 0; k * FRAME < c.normal.length; k++) if (vad.process(c.normal.subarray(k * FRAME, (k + 1) * FRAME)) & 2) return k;
    return -1;
  } finally {
    vad.free();
  }
}

describe('speakerphone echo', () => {
  // All four calls at once (each on its own bridge and model), so the file takes one fixture's time.
  let only: EchoRun[];
  let withCaller: EchoRun[];
  let burst: EchoRun;
  beforeAll(async () => {
    const runs = await Promise.all([
      runEcho('echo_d120_g10_only.wav', true), runEcho('echo_d250_g18_only.wav', true),
      // The caller starts at 2.5 s: half a second after that is enough. The model's VAD is off
      // here: the barge-in measured is the bridge's own.
      runEcho('echo_d120_g10_caller.wav', false, 3000), runEcho('echo_d250_g18_caller.wav', false, 3000),
      // The whole answer at once into a 1 s queue: seconds of it are handed to Twilio ahead of
      // playback, and the gate must still know what plays when.
      runEcho('echo_d120_g10_only.wav', false, Infinity, { QUEUE_SECONDS: '1' }, true),
    ]);
    only = runs.slice(0, 2);
    withCaller = runs.slice(2, 4);
    burst = runs[4];
  });

  it('the bot\'s own echo never barges in (with the model\'s VAD hearing it too)', () => {
    for (const r of only) {
      const info = fixtureInfo(r.file);
      const botMs = (info.botEndMs! - info.botStartMs!);
      console.log(`[echo] ${r.file}: bot started at ${r.botStartMs.toFixed(1)} ms (fixture ${info.botStartMs}), ` +
        `echo delay as played ${(info.botStartMs! + info.delayMs! - r.botStartMs).toFixed(0)} ms; played ${r.report.audioPlayedMs} ms, ` +
        `clears ${r.report.clearsReceived}, model speech_started ${r.session.sent.filter((e) => e.type === 'input_audio_buffer.speech_started').length}`);
      expect(r.report.clearsReceived, r.file).toBe(0);
      expect(r.session.events.filter((e) => e.type === 'response.cancel' || e.type === 'conversation.item.truncate'), r.file).toEqual([]);
      expect(r.rig.logs.find(/^barge-in$/), r.file).toEqual([]);
      // The bot's whole answer played (the model did not cut itself off on its own echo either).
      expect(r.session.responses[0].status, r.file).toBe('completed');
      expect(r.report.audioPlayedMs, r.file).toBeGreaterThanOrEqual(botMs - 20);
    }
  });

  it('the echo of an answer handed to Twilio in one burst does not barge in either', () => {
    expect(burst.session.events.length).toBeGreaterThan(0);
    console.log(`[echo] burst ${burst.file}: bot started at ${burst.botStartMs.toFixed(1)} ms; played ${burst.report.audioPlayedMs} ms, clears ${burst.report.clearsReceived}`);
    expect(burst.report.clearsReceived).toBe(0);
    expect(burst.rig.logs.find(/^barge-in$/)).toEqual([]);
    expect(burst.report.audioPlayedMs).toBeGreaterThanOrEqual(3180);
  });

  it('a caller talking over the echo barges in within two frames of the VAD\'s normal detection', () => {
    for (const r of withCaller) {
      const info = fixtureInfo(r.file);
      const normal = normalOnsetFrame(r.rig, r.file);
      expect(normal, r.file).toBeGreaterThan(0);
      // The barge-in is where the truncate went (the model may already have sent all its audio:
      // then there is no response to cancel, only the heard part to truncate).
      const ev = r.session.events;
      const truncAt = ev.findIndex((e) => e.type === 'conversation.item.truncate');
      const frame = ev.slice(0, truncAt).filter((e) => e.type === 'input_audio_buffer.append').length - 1;
      console.log(`[echo] ${r.file}: bot started at ${r.botStartMs.toFixed(1)} ms; caller onset ${info.onsetMs} ms; ` +
        `normal VAD onset frame ${normal}, bridge barged in on frame ${frame} (+${frame - normal}); clears ${r.report.clearsReceived}`);
      expect(truncAt, r.file).toBeGreaterThan(0);
      expect(r.report.clearsReceived, r.file).toBe(1);
      expect(r.report.playback.filter((p) => p.endedByClear).length, r.file).toBe(1);
      // Not before the caller spoke (that would be the echo), and at most two frames late.
      expect((frame + 1) * 20, r.file).toBeGreaterThan(info.onsetMs!);
      expect(frame - normal, r.file).toBeLessThanOrEqual(2);
    }
  });
});
