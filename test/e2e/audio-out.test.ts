// Model -> caller: the model's response audio reaches the caller whole, downsampled by our kernel,
// paced near real time (not dumped into Twilio's buffer), with marks that all come back played.
import { afterEach, describe, expect, it } from 'vitest';
import { decodeMulaw, encodeMulaw } from '../../src/dsp/g711.js';
import { simulateCall } from '../../src/simulate/index.js';
import { encodeAudio, resample as localModelResample } from '../../src/model/local/audio.js';
import { bestCorrelation, fixturePcm, resample, silenceMulaw, startRig, type Rig } from './harness.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** 1 s of the bot's voice as the model would send it (24 kHz PCM16). */
function botAudio24k(): Int16Array {
  return resample(fixturePcm('echo_bot_outbound.wav').slice(0, 1000 * 8), 8000, 24000);
}

/** Receiving side of Twilio's buffer, in call time: the most audio ever queued ahead of playback. */
function leadTracker() {
  let end = -Infinity;
  let maxLeadMs = 0;
  return {
    onMessage(dir: 'out' | 'in', atMs: number, text: string) {
      if (dir !== 'in' || !text.startsWith('{"event":"media"')) return;
      const ms = Buffer.byteLength(JSON.parse(text).media.payload, 'base64') / 8;
      end = Math.max(end, atMs) + ms;
      maxLeadMs = Math.max(maxLeadMs, end - atMs);
    },
    get maxLeadMs() { return maxLeadMs; },
  };
}

describe('model audio reaches the caller', () => {
  for (const format of ['pcm24k', 'pcmu'] as const) {
    it(`${format}: the heard audio is the response audio downsampled by our resampler`, async () => {
      const bot = botAudio24k();
      // MARK_INTERVAL_MS pinned to the 100 ms the mark-count check below is written for (the
      // default is 200 since fewer mark echoes cost less per call-second).
      rig = await startRig({ GREETING: 'hello', AUDIO_FORMAT: format, MARK_INTERVAL_MS: '100' }, { vadRms: 1e9, responseAudio: bot });
      const lead = leadTracker();
      const report = await simulateCall({
        url: rig.wsUrl, caller: { mulaw: silenceMulaw(1500) }, tailMs: 0, onMessage: lead.onMessage,
      });
      const session = rig.local.sessions[0];
      expect(session.responses.length).toBe(1);
      expect(session.responses[0].status).toBe('completed');

      // pcm24k: our 24k -> 8k kernel in the bridge; pcmu: the model's own mu-law (local model's
      // resampler), passed through.
      const want = format === 'pcm24k'
        ? encodeMulaw(resample(bot, 24000, 8000))
        : encodeAudio(localModelResample(bot, 24000, 8000), 'pcmu');
      const wantMs = bot.length / 24;
      expect(report.audioReceivedMs).toBe(wantMs);
      expect(report.audioPlayedMs).toBe(wantMs);
      // What played, gaps (if this machine stalled the pacer past its lead) removed.
      const played = Buffer.concat(report.playback.map((r) =>
        report.heardMulaw.subarray(r.startMs * 8, r.endMs * 8)));
      expect(Buffer.compare(played, Buffer.from(want))).toBe(0);
      const ref = resample(bot, 24000, 8000);
      const { r } = bestCorrelation(decodeMulaw(played), ref, -40, 40);
      expect(r).toBeGreaterThanOrEqual(0.9);

      expect(report.violations).toBe(0);
      expect(report.clearsReceived).toBe(0);
      // Marks: at least one per 100 ms of audio and the last one at the end; all echoed by playback.
      expect(report.marksReceived).toBeGreaterThanOrEqual(Math.floor(wantMs / 100));
      expect(report.marksEchoedByClear).toBe(0);
      expect(report.marksPending).toBe(0);
      // Paced: the model sent 1 s at 4x real time, Twilio never held much more than the lead.
      expect(lead.maxLeadMs).toBeLessThan(rig.config.playbackLeadMs + 200);
      console.log(`[audio-out ${format}] first audio ${report.firstAudioMs} ms, max lead ${lead.maxLeadMs.toFixed(0)} ms, underruns ${report.underruns}`);
    });
  }

  it('a response longer than the outbound queue is handed on to Twilio, none of it dropped', async () => {
    // 2.5 s of audio arriving at once into a 1 s queue: the queue fills up twice.
    const bot = resample(fixturePcm('echo_bot_outbound.wav').slice(0, 2500 * 8), 8000, 24000);
    rig = await startRig({ GREETING: 'hello', QUEUE_SECONDS: '1' }, { vadRms: 1e9, responseAudio: bot, speed: Infinity, deltaMs: 250 });
    const report = await simulateCall({ url: rig.wsUrl, caller: { mulaw: silenceMulaw(2600) }, tailMs: 0 });
    expect(report.audioReceivedMs).toBe(2500);
    expect(rig.logs.find(/queue full/)).toEqual([]);
    const played = Buffer.concat(report.playback.map((r) => report.heardMulaw.subarray(r.startMs * 8, r.endMs * 8)));
    expect(Buffer.compare(played, Buffer.from(encodeMulaw(resample(bot, 24000, 8000))))).toBe(0);
  });
});
