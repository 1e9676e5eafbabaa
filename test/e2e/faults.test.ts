// Model faults, each with one defined behaviour, against the local model's fault scripts:
//   upgrade refused (401/429/500)         -> stream closed 1011 "model session failed" at once
//   error event, request-level (rate limit, server_error) -> logged + counted, the call goes on
//   error event, session over (session_expired)           -> stream closed 1011, outcome model_error
//   response.done status failed           -> logged + counted, the call goes on
//   socket dropped mid-response           -> stream closed 1011 "model session closed"
//   Twilio gone mid-response (no stop)    -> model socket closed, call state freed
import { afterEach, describe, expect, it } from 'vitest';
import type { Call } from '../../src/bridge/call.js';
import { simulateCall } from '../../src/simulate/index.js';
import { sampleValue } from '../fixtures/cluster/prom-text.js';
import { fixturePcm, FRAME, QUIET_MODEL, resample, silenceMulaw, startRig, TwilioSocket, until, type Rig } from './harness.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const BOT = resample(fixturePcm('echo_bot_outbound.wav').slice(0, 8000), 8000, 24000);

async function theCall(r: Rig): Promise<Call> {
  await until(() => r.bridge.calls.size === 1, 2000, 'the call to register');
  return [...r.bridge.calls][0];
}

async function metric(r: Rig, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  return sampleValue(await (await fetch(`${r.httpUrl}/metrics`)).text(), name, labels);
}

describe('model socket refused', () => {
  for (const status of [401, 429, 500]) {
    it(`upgrade answered ${status}: the stream is closed with 1011 at once and the status logged`, async () => {
      rig = await startRig({}, { ...QUIET_MODEL, rejectUpgrade: status });
      const tw = await TwilioSocket.open(rig.wsUrl);
      tw.start();
      expect(await tw.closed).toBe(1011);
      expect(tw.closeReason).toBe('model session failed');
      expect(rig.local.upgrades[0].status).toBe(status);
      const line = rig.logs.find(/model session closed; ending the call/)[0];
      expect(line.reason).toMatch(new RegExp(`HTTP ${status}`));
      await until(() => rig!.bridge.calls.size === 0, 2000, 'the call removed');
      expect(await metric(rig, 'voicebridge_calls_total', { outcome: 'model_failed' })).toBe(1);
    });
  }
});

describe('model error events mid-call', () => {
  it('rate_limit_exceeded: logged with the call ids and counted; the call goes on', async () => {
    // Client event 1 is session.update; 5 is the 4th append.
    rig = await startRig({}, { ...QUIET_MODEL, errorAt: { event: 5, code: 'rate_limit_exceeded', errorType: 'rate_limit_error', message: 'Rate limit reached' } });
    const tw = await TwilioSocket.open(rig.wsUrl);
    tw.start();
    const call = await theCall(rig);
    const session = await rig.local.session(0);
    await session.waitFor('session.update');
    for (let i = 0; i < 10; i++) tw.media();
    await until(() => session.sent.some((e) => e.type === 'error'), 3000, 'the scripted error');
    for (let i = 0; i < 10; i++) tw.media();
    // 19 of the 20 appends handled (the 4th was answered with the error instead).
    await until(() => session.inputSamples === 19 * FRAME * 3, 3000, 'audio after the error');
    expect(call.ended).toBe(false);
    expect(call.stats.modelErrors).toBe(1);
    const line = rig.logs.find(/model error; the call goes on/)[0];
    expect(line.code).toBe('rate_limit_exceeded');
    expect(line.callSid).toBe(tw.callSid);
    expect(await metric(rig, 'voicebridge_model_errors_total', { code: 'rate_limit_exceeded' })).toBe(1);
    expect(await metric(rig, 'voicebridge_model_error_actions_total', { action: 'logged' })).toBe(1);
    tw.stop();
    expect(await tw.closed).toBe(1000);
    expect(call.outcome).toBe('completed');
  });

  it('session_expired: the call ends cleanly, 1011 to Twilio, the model socket closed', async () => {
    rig = await startRig({}, { ...QUIET_MODEL, errorAt: { event: 3, code: 'session_expired', errorType: 'invalid_request_error', message: 'Your session hit the maximum duration of 60 minutes.' } });
    const tw = await TwilioSocket.open(rig.wsUrl);
    tw.start();
    const call = await theCall(rig);
    const session = await rig.local.session(0);
    await session.waitFor('session.update');
    for (let i = 0; i < 5; i++) tw.media();
    expect(await tw.closed).toBe(1011);
    expect(tw.closeReason).toBe('model error: session_expired');
    expect(call.outcome).toBe('model_error');
    await session.waitClosed();
    expect(call.dsp.freed).toBe(true);
    const line = rig.logs.find(/model error ends its session/)[0];
    expect(line.level).toBe(50);
    expect(line.callSid).toBe(tw.callSid);
    expect(await metric(rig, 'voicebridge_model_error_actions_total', { action: 'ended_call' })).toBe(1);
  });

  it('a response that fails: its audio so far plays, it is logged and counted, the call goes on (rate_limits.updated too)', async () => {
    rig = await startRig({ GREETING: 'hi' }, { ...QUIET_MODEL, responseAudio: BOT, failAfterDeltas: 3, rateLimits: true });
    const report = await simulateCall({ url: rig.wsUrl, caller: { mulaw: silenceMulaw(1500) }, tailMs: 0 });
    const session = rig.local.sessions[0];
    expect(session.responses[0].status).toBe('failed');
    // 3 deltas of 100 ms reached the caller, and the call ran to its stop.
    expect(report.audioReceivedMs).toBe(300);
    expect(report.closeCode).toBe(1000);
    expect(report.closedBy).toBe('client');
    await session.waitClosed();
    expect(session.inputSamples).toBe(report.framesSent * FRAME * 3);
    const line = rig.logs.find(/model response failed/)[0];
    expect(line.code).toBe('server_error');
    expect(line.callSid).toBe(report.callSid);
    expect(await metric(rig, 'voicebridge_model_responses_total', { status: 'failed' })).toBe(1);
    expect(rig.logs.lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});

describe('sockets dropped mid-response', () => {
  it('the model socket closing mid-response ends the stream with 1011 (no reconnect: the conversation is in that session)', async () => {
    rig = await startRig({ GREETING: 'hi' }, { ...QUIET_MODEL, responseAudio: BOT, speed: 1, dropAfterDeltas: 3, dropCode: 1011 });
    const tw = await TwilioSocket.open(rig.wsUrl);
    tw.start();
    const call = await theCall(rig);
    for (let i = 0; i < 3; i++) tw.media();
    expect(await tw.closed).toBe(1011);
    expect(tw.closeReason).toBe('model session closed');
    expect(call.outcome).toBe('model_failed');
    expect(call.dsp.freed).toBe(true);
    // Some of the answer reached the caller before the drop.
    expect(tw.events('media').length).toBeGreaterThan(0);
  });

  it('Twilio gone without stop while bot audio is playing: the model socket is closed and the state freed', async () => {
    rig = await startRig({ GREETING: 'hi' }, { ...QUIET_MODEL, responseAudio: BOT, speed: 1 });
    const tw = await TwilioSocket.open(rig.wsUrl);
    tw.start();
    const call = await theCall(rig);
    const session = await rig.local.session(0);
    await until(() => tw.events('media').length >= 5, 3000, 'bot audio playing');
    tw.ws.terminate();
    await session.waitClosed();
    expect(call.outcome).toBe('hangup');
    expect(call.dsp.freed).toBe(true);
    expect(rig.bridge.calls.size).toBe(0);
    expect(rig.logs.lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});
