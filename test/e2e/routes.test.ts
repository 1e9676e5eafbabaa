// The HTTP side: health, the TwiML webhook, and X-Twilio-Signature on both the webhook and the
// media-stream upgrade (an unsigned upgrade must never reach the model).
import { afterEach, describe, expect, it } from 'vitest';
import { computeSignature } from '../../src/twilio/signature.js';
import { SimulateConnectError, simulateCall } from '../../src/simulate/index.js';
import { silenceMulaw, startRig, TwilioSocket, until, type Rig } from './harness.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const FORM = { CallSid: 'CA0123456789abcdef', From: '+15550100', To: '+15550199', AccountSid: 'ACxyz', Direction: 'inbound' };

function post(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

/** <Parameter name=.. value=..> pairs of a TwiML document. */
function parameters(xml: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of xml.matchAll(/<Parameter name="([^"]*)" value="([^"]*)"\/>/g)) out[m[1]] = m[2];
  return out;
}

describe('routes', () => {
  it('GET / is a JSON health check', async () => {
    rig = await startRig();
    const res = await fetch(`${rig.httpUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/json/);
    const body = await res.json();
    expect(body.ok).toBe(true);
    expect(body.calls).toBe(0);
  });

  it('POST /incoming-call answers TwiML connecting a stream with From/To/CallSid parameters', async () => {
    rig = await startRig({ STREAM_PARAMETERS: 'tenant=abc123' });
    const res = await post(`${rig.httpUrl}/incoming-call`, FORM);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/xml/);
    const xml = await res.text();
    expect(xml).toMatch(/^<\?xml[^>]*\?><Response><Connect><Stream url="wss:\/\/127\.0\.0\.1:\d+\/media-stream">/);
    expect(xml).toContain('</Stream></Connect></Response>');
    expect(parameters(xml)).toEqual({ tenant: 'abc123', CallSid: FORM.CallSid, From: FORM.From, To: FORM.To });
  });

  it('GET /incoming-call (a webhook configured as GET) reads the query string', async () => {
    rig = await startRig();
    const res = await fetch(`${rig.httpUrl}/incoming-call?${new URLSearchParams(FORM)}`, { signal: AbortSignal.timeout(2000) });
    expect(res.status).toBe(200);
    expect(parameters(await res.text())).toEqual({ CallSid: FORM.CallSid, From: FORM.From, To: FORM.To });
  });

  it('an oversized webhook body is refused with 413 and the server goes on', async () => {
    rig = await startRig();
    const res = await post(`${rig.httpUrl}/incoming-call`, { ...FORM, Junk: 'x'.repeat(100_000) }).catch((e) => e);
    // The server may answer before reading the whole body and close: a 413 or a reset, never a hang.
    if (!(res instanceof Error)) expect(res.status).toBe(413);
    expect((await fetch(`${rig.httpUrl}/`)).status).toBe(200);
    expect((await post(`${rig.httpUrl}/incoming-call`, FORM)).status).toBe(200);
  });

  it('PUBLIC_URL sets the stream URL (behind a proxy the Host header is not the public host)', async () => {
    rig = await startRig({ PUBLIC_URL: 'https://voice.example.com' });
    const xml = await (await post(`${rig.httpUrl}/incoming-call`, FORM)).text();
    expect(xml).toContain('<Stream url="wss://voice.example.com/media-stream">');
  });
});

describe('X-Twilio-Signature', () => {
  const TOKEN = 'test-auth-token';
  const PUBLIC = 'https://voice.example.com';

  async function signedRig(): Promise<Rig> {
    return startRig({ TWILIO_AUTH_TOKEN: TOKEN, PUBLIC_URL: PUBLIC });
  }

  it('/incoming-call: missing or bad signature -> 403, a correct one over the public URL -> TwiML', async () => {
    rig = await signedRig();
    const url = `${rig.httpUrl}/incoming-call`;
    expect((await post(url, FORM)).status).toBe(403);
    expect((await post(url, FORM, { 'X-Twilio-Signature': 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' })).status).toBe(403);
    // Signed over the wrong URL (the local one) or with a parameter changed afterwards.
    expect((await post(url, FORM, { 'X-Twilio-Signature': computeSignature(TOKEN, url, FORM) })).status).toBe(403);
    const good = computeSignature(TOKEN, `${PUBLIC}/incoming-call`, FORM);
    expect((await post(url, { ...FORM, From: '+15550666' }, { 'X-Twilio-Signature': good })).status).toBe(403);
    const res = await post(url, FORM, { 'X-Twilio-Signature': good });
    expect(res.status).toBe(200);
    expect(parameters(await res.text()).CallSid).toBe(FORM.CallSid);
    // A query string is part of what Twilio signs.
    const q = `${rig.httpUrl}/incoming-call?tenant=7`;
    expect((await post(q, FORM, { 'X-Twilio-Signature': good })).status).toBe(403);
    const qs = computeSignature(TOKEN, `${PUBLIC}/incoming-call?tenant=7`, FORM);
    expect((await post(q, FORM, { 'X-Twilio-Signature': qs })).status).toBe(200);
  });

  it('a signed GET /incoming-call: Twilio signs the URL with its query string and no body params', async () => {
    rig = await signedRig();
    const query = new URLSearchParams(FORM).toString();
    const url = `${rig.httpUrl}/incoming-call?${query}`;
    const sig = computeSignature(TOKEN, `${PUBLIC}/incoming-call?${query}`, {});
    const res = await fetch(url, { headers: { 'X-Twilio-Signature': sig } });
    expect(res.status).toBe(200);
    expect(parameters(await res.text()).From).toBe(FORM.From);
    expect((await fetch(url, { headers: { 'X-Twilio-Signature': computeSignature(TOKEN, `${PUBLIC}/incoming-call`, FORM) } })).status).toBe(403);
  });

  it('the media-stream upgrade: missing or bad signature -> 403 and no model session', async () => {
    rig = await signedRig();
    const wsUrl = rig.wsUrl;
    await expect(TwilioSocket.open(wsUrl)).rejects.toThrow(/403/);
    await expect(TwilioSocket.open(wsUrl, { 'x-twilio-signature': 'bogus' })).rejects.toThrow(/403/);
    // Signed over the local URL instead of the public one.
    await expect(TwilioSocket.open(wsUrl, { 'x-twilio-signature': computeSignature(TOKEN, wsUrl.replace('ws:', 'wss:')) }))
      .rejects.toThrow(/403/);
    // The simulator's view: the upgrade is refused with HTTP 403.
    const err = await simulateCall({ url: wsUrl, caller: { mulaw: silenceMulaw(100) }, authToken: 'wrong-token', signUrl: `wss://voice.example.com/media-stream` })
      .catch((e) => e);
    expect(err).toBeInstanceOf(SimulateConnectError);
    expect(err.statusCode).toBe(403);
    expect(rig.local.upgrades.length).toBe(0);
    expect(rig.bridge.calls.size).toBe(0);
  });

  it('the media-stream upgrade with a correct signature over the public wss URL is bridged', async () => {
    rig = await signedRig();
    const report = await simulateCall({
      url: rig.wsUrl, caller: { mulaw: silenceMulaw(200) }, tailMs: 0,
      authToken: TOKEN, signUrl: 'wss://voice.example.com/media-stream',
    });
    expect(report.closedBy).toBe('client');
    expect(report.violations).toBe(0);
    const session = await rig.local.session(0);
    await until(() => session.inputSamples === report.framesSent * 480, 2000, 'the audio at the model');
  });
});
