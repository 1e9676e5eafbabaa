// What a Call does with model errors, failed responses and a dropped model socket: each has one
// defined behaviour (bridge/model-errors.ts), and every call ends exactly once.
import { describe, expect, it } from 'vitest';
import { modelErrorPolicy } from '../../src/bridge/model-errors.js';
import { CALL_SID, frame, makeCall, mediaMsg, ready, startMsg, stopMsg, text } from './fakes.js';

describe('model error policy', () => {
  it('ignores races, goes on after request errors, ends the call when the session is over', () => {
    expect(modelErrorPolicy({ type: 'invalid_request_error', code: 'response_cancel_not_active' })).toBe('ignore');
    expect(modelErrorPolicy({ type: 'invalid_request_error', code: 'conversation_already_has_active_response' })).toBe('ignore');
    expect(modelErrorPolicy({ type: 'rate_limit_error', code: 'rate_limit_exceeded' })).toBe('continue');
    expect(modelErrorPolicy({ type: 'server_error', code: 'server_error' })).toBe('continue');
    expect(modelErrorPolicy({ type: 'invalid_request_error', code: 'invalid_value', message: 'audio_end_ms too long' })).toBe('continue');
    expect(modelErrorPolicy({ type: 'invalid_request_error', code: 'session_expired' })).toBe('end_call');
    expect(modelErrorPolicy({ type: 'insufficient_quota', code: 'insufficient_quota' })).toBe('end_call');
    expect(modelErrorPolicy({ type: 'authentication_error', code: null })).toBe('end_call');
    // Unknown or malformed: the call goes on (a dead session closes its socket anyway).
    expect(modelErrorPolicy({ code: 'something_new' })).toBe('continue');
    expect(modelErrorPolicy(undefined)).toBe('continue');
    expect(modelErrorPolicy({ code: 42, type: [] } as never)).toBe('continue');
  });
});

describe('model faults mid-call', () => {
  async function live() {
    const r = makeCall();
    await ready(r);
    text(r, startMsg());
    text(r, mediaMsg(1, frame(0xff)));
    return r;
  }

  it('rate_limit_exceeded / server_error: logged with the call ids and counted, the call goes on', async () => {
    const r = await live();
    r.model.event({ type: 'error', error: { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'slow down' } });
    r.model.event({ type: 'error', error: { type: 'server_error', code: 'server_error', message: 'oops' } });
    r.model.event({ type: 'error', error: { type: 'invalid_request_error', code: 'response_cancel_not_active' } });
    expect(r.call.ended).toBe(false);
    expect(r.call.stats.modelErrors).toBe(2);
    expect(r.faults.counts['modelError:logged']).toBe(2);
    expect(r.faults.counts['modelError:ignored']).toBe(1);
    const warned = r.lines.filter((l) => /model error; the call goes on/.test(l.msg));
    expect(warned.map((l) => l.code)).toEqual(['rate_limit_exceeded', 'server_error']);
    expect(warned.every((l) => l.callSid === CALL_SID)).toBe(true);
    // Audio still flows to the model.
    const before = r.model.sentRaw.length;
    text(r, mediaMsg(2, frame(0xff)));
    expect(r.model.sentRaw.length).toBe(before + 1);
  });

  it('session_expired: the call ends cleanly (1011 to Twilio, model closed, DSP freed), once', async () => {
    const r = await live();
    r.model.event({ type: 'error', error: { type: 'invalid_request_error', code: 'session_expired', message: 'Your session hit the maximum duration of 60 minutes.' } });
    expect(r.call.outcome).toBe('model_error');
    expect(r.carrier.closes).toEqual([{ code: 1011, reason: 'model error: session_expired' }]);
    expect(r.model.closes.length).toBe(1);
    expect(r.call.dsp.freed).toBe(true);
    expect(r.faults.counts['modelError:ended_call']).toBe(1);
    // The model's own close and Twilio's stop that follow change nothing.
    r.model.onClose(1000, 'bye');
    text(r, stopMsg());
    r.call.carrierClosed(1000, '');
    expect(r.ends.length).toBe(1);
    expect(r.call.endings).toBe(1);
  });

  it('a response that ends failed is logged and counted; the call goes on and plays what came', async () => {
    const r = await live();
    r.model.event({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    r.model.event({ type: 'response.output_item.added', response_id: 'resp_1', item: { id: 'item_a' } });
    // 150 ms: seven whole frames and a partial one, flushed because the response is over.
    r.model.delta('item_a', frame(0x20, 1200));
    r.model.event({
      type: 'response.done',
      response: { id: 'resp_1', status: 'failed', status_details: { type: 'failed', error: { type: 'server_error', code: 'server_error', message: 'x' } } },
    });
    expect(r.call.ended).toBe(false);
    expect(r.call.stats.failedResponses).toBe(1);
    expect(r.faults.counts['response:failed']).toBe(1);
    const line = r.lines.find((l) => /model response failed/.test(l.msg))!;
    expect(line.code).toBe('server_error');
    expect(line.callSid).toBe(CALL_SID);
    for (let i = 0; i < 50; i++) r.call.tick((r.clock.t += 10));
    expect(r.carrier.mediaBytes().length).toBe(1200);
  });

  it('the model socket dropping mid-call ends the call with 1011 (no reconnect: a new session has lost the conversation)', async () => {
    const r = await live();
    r.model.onClose(1006, '');
    expect(r.call.outcome).toBe('model_failed');
    expect(r.carrier.closes).toEqual([{ code: 1011, reason: 'model session closed' }]);
    expect(r.call.dsp.freed).toBe(true);
    expect(r.ends.length).toBe(1);
  });

  it('a model that fails before it was ready ends the call with 1011 "model session failed"', async () => {
    const r = makeCall();
    text(r, startMsg());
    r.model.rejectReady(new Error('model upgrade rejected: HTTP 429'));
    r.model.onClose(1006, 'model upgrade rejected: HTTP 429');
    expect(r.call.outcome).toBe('model_failed');
    expect(r.carrier.closes).toEqual([{ code: 1011, reason: 'model session failed' }]);
    expect(r.lines.find((l) => /model session closed; ending the call/.test(l.msg))!.reason).toMatch(/429/);
  });
});

describe('unsigned mode', () => {
  it('warns once per call, with the callSid, when signatures are not checked', async () => {
    const r = makeCall({ warnUnsigned: true });
    await ready(r);
    text(r, startMsg());
    for (let i = 1; i <= 5; i++) text(r, mediaMsg(i, frame(0xff)));
    const lines = r.lines.filter((l) => /INSECURE/.test(l.msg));
    expect(lines.length).toBe(1);
    expect(lines[0].level).toBe(40);
    expect(lines[0].callSid).toBe(CALL_SID);
  });

  it('says nothing of the kind when signatures are checked', async () => {
    const r = makeCall();
    await ready(r);
    text(r, startMsg());
    expect(r.lines.filter((l) => /INSECURE/.test(l.msg))).toEqual([]);
  });
});
