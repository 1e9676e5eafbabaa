// Hostile input over real sockets, while a healthy call runs beside it: every bad message is
// counted by kind (in /metrics) and logged with the call's ids, and the call either goes on or is
// closed with its documented code (flood: 1008; over MAX_MESSAGE_BYTES or not UTF-8: uWS drops
// the connection, the peer sees 1006). The healthy call's audio flows both ways, whole, throughout.
import { afterEach, describe, expect, it } from 'vitest';
import type { Call } from '../../src/bridge/call.js';
import { decodeMulaw, encodeMulaw } from '../../src/dsp/g711.js';
import { simulateCall, type SimReport } from '../../src/simulate/index.js';
import { sampleValue } from '../fixtures/cluster/prom-text.js';
import { fixtureMulaw, fixturePcm, FRAME, resample, startRig, TwilioSocket, until, type Rig } from './harness.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** 1 s of bot voice, 24 kHz: the healthy call's greeting. */
const BOT = resample(fixturePcm('echo_bot_outbound.wav').slice(0, 8000), 8000, 24000);
/** 3 s of caller speech. */
const CALLER = fixtureMulaw('u2_clean.wav').slice(0, 3000 * 8);

async function hostileRig(env: Record<string, string> = {}): Promise<Rig> {
  // Barge-in off: the healthy caller talks over the greeting, and all of it must still play.
  return startRig({ GREETING: 'hello', BARGE_IN: 'off', ...env }, { vadRms: 1e9, responseAudio: BOT });
}

/** Starts the healthy call first, so its model session is sessions[0]. */
async function healthyCall(r: Rig): Promise<Promise<SimReport>> {
  const report = simulateCall({ url: r.wsUrl, caller: { mulaw: CALLER }, tailMs: 300, callSid: 'CAhealthy', streamSid: 'MZhealthy' });
  await r.local.session(0);
  return report;
}

/** The healthy call, after the fact: all its audio reached the model, all the bot's reached it. */
async function expectHealthy(r: Rig, report: SimReport): Promise<void> {
  expect(report.closeCode).toBe(1000);
  expect(report.violations).toBe(0);
  expect(report.audioReceivedMs).toBe(1000);
  expect(report.audioPlayedMs).toBe(1000);
  const played = Buffer.concat(report.playback.map((x) => report.heardMulaw.subarray(x.startMs * 8, x.endMs * 8)));
  expect(Buffer.compare(played, Buffer.from(encodeMulaw(resample(BOT, 24000, 8000))))).toBe(0);
  const session = r.local.sessions[0];
  await until(() => session.closed, 2000, 'the healthy session closed');
  const sent = Buffer.concat([Buffer.from(CALLER), Buffer.alloc(report.framesSent * FRAME - CALLER.length, 0xff)]);
  expect(session.input()).toEqual(resample(decodeMulaw(sent), 8000, 24000));
}

async function metrics(r: Rig): Promise<string> {
  return (await fetch(`${r.httpUrl}/metrics`)).text();
}

async function hostileCall(r: Rig, sid: string): Promise<{ tw: TwilioSocket; call: Call }> {
  const before = new Set(r.bridge.calls);
  const tw = await TwilioSocket.open(r.wsUrl, {}, sid);
  await until(() => [...r.bridge.calls].some((c) => !before.has(c)), 2000, 'the hostile call');
  return { tw, call: [...r.bridge.calls].find((c) => !before.has(c))! };
}

describe('hostile input beside a healthy call', () => {
  it('each bad message is counted by kind and logged with the call ids; the call goes on', async () => {
    rig = await hostileRig();
    const healthy = await healthyCall(rig);
    const { tw, call } = await hostileCall(rig, 'bad');
    const sid = tw.streamSid;
    const media = (m: object) => JSON.stringify({ event: 'media', sequenceNumber: '3', streamSid: sid, ...m });
    const cases: [string, string, () => void][] = [
      ['media before start', 'before_start', () => tw.media()],
      ['start', '', () => tw.start()],
      ['malformed JSON', 'json', () => tw.send('{"event":"media",')],
      ['JSON array', 'json', () => tw.send('[1,2,3]')],
      ['NUL and control bytes', 'json', () => tw.send('\u0000\u0001{"event":"media"}\u0000')],
      ['deeply nested JSON', 'json', () => tw.send('['.repeat(50_000) + ']'.repeat(50_000))],
      ['timestamp as a number', 'invalid', () => tw.send(media({ media: { track: 'inbound', chunk: '1', timestamp: 52, payload: '//////' } }))],
      ['payload as a number', 'invalid', () => tw.send(media({ media: { track: 'inbound', chunk: '1', timestamp: '52', payload: 7 } }))],
      ['media as a string', 'invalid', () => tw.send(media({ media: 'AAAA' }))],
      ['event as a number', 'invalid', () => tw.send({ event: 5 })],
      ['start with a string sampleRate', 'invalid', () => tw.send({
        event: 'start', sequenceNumber: '1', streamSid: sid,
        start: { accountSid: 'AC', streamSid: sid, callSid: tw.callSid, tracks: ['inbound'], mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: '8000', channels: 1 } },
      })],
      ['second start', 'duplicate_start', () => tw.start()],
      ['unknown event', 'unknown_event', () => tw.send({ event: 'dance', streamSid: sid })],
      ['binary frame', 'binary', () => tw.ws.send(Buffer.from([1, 2, 3, 4]), { binary: true })],
      ['invalid base64', 'base64', () => tw.media(undefined, '!!!notbase64!!!')],
      ['base64 of odd length', 'base64', () => tw.media(undefined, 'AAAAA')],
      ['payload over a second of audio', 'too_large', () => tw.media(undefined, 'A'.repeat(12_000))],
      ['600 kB message (under MAX_MESSAGE_BYTES)', 'too_large', () => tw.send({ event: 'media', pad: 'x'.repeat(600_000) })],
    ];
    const expected: Record<string, number> = {};
    let framesIn = 0;
    for (const [what, kind, send] of cases) {
      const before = call.stats.badMessages;
      send();
      if (kind === 'before_start') {
        await until(() => call.stats.framesIn === 1, 2000, what);
        framesIn = 1;
      } else if (kind === '') {
        await until(() => call.streamSid !== '', 2000, what);
        continue;
      } else {
        // A good frame after each: the call still takes audio.
        tw.media();
        await until(() => call.stats.framesIn === framesIn + 1, 3000, `a frame after ${what}`);
        framesIn++;
      }
      expect(call.stats.badMessages - before, what).toBe(1);
      expect(call.ended, what).toBe(false);
      expected[kind] = (expected[kind] ?? 0) + 1;
    }
    const text = await metrics(rig);
    for (const [kind, n] of Object.entries(expected)) {
      expect(sampleValue(text, 'voicebridge_bad_messages_total', { kind }), kind).toBe(n);
    }
    // Logged with the call's ids (after start), each kind at least once.
    const warned = rig.logs.lines.filter((l) => l.level === 40 && /bad twilio message/.test(l.msg));
    expect(warned.filter((l) => l.callSid === tw.callSid).length).toBeGreaterThanOrEqual(Object.keys(expected).length - 1);
    tw.stop();
    expect(await tw.closed).toBe(1000);
    expect(call.outcome).toBe('completed');
    await expectHealthy(rig, await healthy);
  });

  it('a flood is closed with 1008 and a message over MAX_MESSAGE_BYTES drops the connection; counted, logged, nothing else touched', async () => {
    rig = await hostileRig({ MAX_MESSAGE_BYTES: '4096', MAX_MESSAGES_PER_S: '100' });
    const healthy = await healthyCall(rig);

    const big = await hostileCall(rig, 'big');
    big.tw.start();
    await until(() => big.call.streamSid !== '', 2000, 'start');
    big.tw.send({ event: 'media', pad: 'x'.repeat(5000) });
    // uWebSockets.js closes the TCP connection without a close frame.
    expect(await big.tw.closed).toBe(1006);
    await until(() => big.call.ended, 2000, 'the oversized call ended');
    expect(big.call.outcome).toBe('bad_stream');
    expect(big.call.dsp.freed).toBe(true);
    const bigLine = rig.logs.lines.find((l) => /MAX_MESSAGE_BYTES/.test(l.msg) && l.level === 50);
    expect(bigLine?.callSid).toBe(big.tw.callSid);

    // A text frame that is not UTF-8: uWS drops the connection the same way.
    const utf = await hostileCall(rig, 'utf');
    utf.tw.start();
    await until(() => utf.call.streamSid !== '', 2000, 'start');
    utf.tw.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect(await utf.tw.closed).toBe(1006);
    await until(() => utf.call.ended, 2000, 'the invalid UTF-8 call ended');
    expect(utf.call.outcome).toBe('bad_stream');
    expect(utf.call.stats.badMessages).toBe(1);

    const flood = await hostileCall(rig, 'flood');
    flood.tw.start();
    await until(() => flood.call.streamSid !== '', 2000, 'start');
    // 2000 messages at once: 10 s worth of the cap, the bucket holds 2 s.
    for (let i = 0; i < 2000; i++) flood.tw.send('{"event":"nonsense"}');
    expect(await flood.tw.closed).toBe(1008);
    expect(flood.tw.closeReason).toBe('message rate exceeded');
    expect(flood.call.outcome).toBe('flood');
    expect(flood.call.dsp.freed).toBe(true);
    const floodLine = rig.logs.lines.find((l) => /flood/.test(l.msg) && l.level === 50);
    expect(floodLine?.callSid).toBe(flood.tw.callSid);

    await expectHealthy(rig, await healthy);
    // Both hostile model sessions were closed too.
    await until(() => rig!.local.sessions.every((s) => s.closed), 2000, 'every model session closed');

    const text = await metrics(rig);
    expect(sampleValue(text, 'voicebridge_stream_closes_total', { reason: 'flood' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_stream_closes_total', { reason: 'too_large' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_stream_closes_total', { reason: 'invalid_utf8' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_bad_messages_total', { kind: 'too_large' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_bad_messages_total', { kind: 'invalid' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_calls_total', { outcome: 'flood' })).toBe(1);
    expect(sampleValue(text, 'voicebridge_calls_total', { outcome: 'bad_stream' })).toBe(2);
    expect(sampleValue(text, 'voicebridge_calls_total', { outcome: 'completed' })).toBe(1);
    expect(rig.bridge.calls.size).toBe(0);
  });
});
