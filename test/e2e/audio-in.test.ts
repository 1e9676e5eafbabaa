// Caller -> model: the caller's audio reaches the model intact, in real time order, in the format
// the session asked for (24 kHz PCM16 resampled by our kernel, or the caller's mu-law bytes).
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { decodeMulaw } from '../../src/dsp/g711.js';
import { simulateCall } from '../../src/simulate/index.js';
import type { LocalSession } from '../../src/model/local/index.js';
import { bestCorrelation, concatBytes, fixtureMulaw, FRAME, resample, silenceMulaw, startRig, TwilioSocket, until, type Rig } from './harness.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** 1.4 s of u1 (speech from 0.1 s) so the call stays short at real time. */
function caller(): Uint8Array {
  return fixtureMulaw('u1_clean.wav').slice(600 * 8, 2000 * 8);
}

describe('caller audio reaches the model', () => {
  it('as 24 kHz PCM16 that matches the caller audio upsampled by our resampler', async () => {
    rig = await startRig();
    const codes = caller();
    const tailMs = 100;
    const report = await simulateCall({ url: rig.wsUrl, caller: { mulaw: codes }, tailMs });
    const session = await rig.local.session(0);
    await session.waitClosed();

    expect(session.inFormat).toBe('pcm24k');
    const sent = concatBytes(codes, silenceMulaw(report.framesSent * 20 - codes.length / 8));
    expect(sent.length).toBe(report.framesSent * FRAME);
    const got = session.input();
    // Every frame arrives, none twice, none invented: 3 x the samples sent.
    expect(got.length).toBe(sent.length * 3);

    const want = resample(decodeMulaw(sent), 8000, 24000);
    const { lag, r } = bestCorrelation(got, want, -480, 480);
    expect(lag).toBe(0);
    expect(r).toBeGreaterThanOrEqual(0.9);
    // The same kernel run frame by frame by the bridge equals one shot: not just similar.
    expect(r).toBeGreaterThan(0.9999);
    // Appends are one per frame, in order (the model's record keeps their byte counts).
    const appends = session.events.filter((e) => e.type === 'input_audio_buffer.append');
    expect(appends.length).toBe(report.framesSent);
    expect(appends.every((e) => e.bytes === FRAME * 3 * 2)).toBe(true);
  });

  it('in AUDIO_FORMAT=pcmu as the caller\'s mu-law bytes, unchanged', async () => {
    const raw: Buffer[] = [];
    rig = await startRig({ AUDIO_FORMAT: 'pcmu' });
    rig.local.options.onSession = (s: LocalSession) => {
      // The session's socket, to see the append payloads byte for byte.
      (s as unknown as { ws: WebSocket }).ws.on('message', (d: Buffer) => {
        const ev = JSON.parse(d.toString('utf8'));
        if (ev.type === 'input_audio_buffer.append') raw.push(Buffer.from(ev.audio, 'base64'));
      });
    };
    // Every mu-law code value, including both zeros (0x7F, 0xFF), then speech.
    const all = new Uint8Array(256 * 5).map((_, i) => i & 255);
    const codes = concatBytes(all, caller());
    const report = await simulateCall({ url: rig.wsUrl, caller: { mulaw: codes }, tailMs: 40 });
    const session = await rig.local.session(0);
    await session.waitClosed();
    await until(() => raw.length === report.framesSent, 1000, 'all appends');

    expect(session.inFormat).toBe('pcmu');
    const sent = concatBytes(codes, silenceMulaw(report.framesSent * 20 - codes.length / 8));
    const got = Buffer.concat(raw);
    expect(got.length).toBe(sent.length);
    expect(Buffer.compare(got, Buffer.from(sent))).toBe(0);
    expect(raw.every((b) => b.length === FRAME)).toBe(true);
  });

  it('a gap in Twilio timestamps reaches the model as silence of the same length, in place', async () => {
    rig = await startRig({ AUDIO_FORMAT: 'pcmu' });
    const tw = await TwilioSocket.open(rig.wsUrl);
    tw.start();
    const speech = caller();
    const frame = (k: number) => speech.subarray(k * FRAME, (k + 1) * FRAME);
    const media = (k: number, ts: number) => tw.send({
      event: 'media', sequenceNumber: String(k + 2), streamSid: tw.streamSid,
      media: { track: 'inbound', chunk: String(k + 1), timestamp: String(ts), payload: Buffer.from(frame(k)).toString('base64') },
    });
    // Frames 0-2 at 20/40/60 ms, then 3 frames lost, then frames 6-7 at 140/160 ms.
    media(0, 20); media(1, 40); media(2, 60); media(6, 140); media(7, 160);
    const session = await rig.local.session(0);
    await until(() => session.inputSamples === 8 * FRAME, 2000, 'the audio with the gap filled');
    tw.stop();
    await session.waitClosed();
    const want = decodeMulaw(concatBytes(frame(0), frame(1), frame(2), silenceMulaw(60), frame(6), frame(7)));
    expect(session.input()).toEqual(want);
  });
});
