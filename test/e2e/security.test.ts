// `voicebridge start` in the insecure development mode (a key, no TWILIO_AUTH_TOKEN, ALLOW_UNSIGNED):
// it runs, says so loudly at start, and says it again on every call with that call's callSid.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/cluster.js';
import { startLocalModel, type LocalModel } from '../../src/model/local/index.js';
import { runStart } from '../../src/start.js';
import { QUIET_MODEL, TwilioSocket, until, type LogLine } from './harness.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe('ALLOW_UNSIGNED with a real key', () => {
  it('starts, warns loudly once at start, and once per call with its callSid', async () => {
    const local: LocalModel = await startLocalModel({ host: '127.0.0.1', port: 0, ...QUIET_MODEL });
    const lines: LogLine[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l));
        cb();
      },
    });
    let server: RunningServer | undefined;
    let stop: (() => Promise<void>) | undefined;
    const code = await runStart({
      OPENAI_API_KEY: 'sk-test', ALLOW_UNSIGNED: '1', OPENAI_BASE_URL: local.url,
      PORT: '0', HOST: '127.0.0.1', WORKERS: '0', DRAIN_SECONDS: '0', LOG_LEVEL: 'info',
    }, { destination, signals: false, started: (s, st) => { server = s; stop = st; } });
    cleanup = async () => {
      await stop?.();
      await local.close();
    };
    expect(code).toBe(-1);
    expect(server).toBeDefined();
    const startWarnings = lines.filter((l) => /INSECURE/.test(l.msg));
    expect(startWarnings.length).toBe(1);
    expect(startWarnings[0].level).toBe(40);
    expect(startWarnings[0].msg).toMatch(/TWILIO_AUTH_TOKEN/);

    // Two unsigned calls: each gets its own warning line carrying its callSid.
    const url = `ws://127.0.0.1:${server!.port}/media-stream`;
    const a = await TwilioSocket.open(url, {}, 'aaa');
    const b = await TwilioSocket.open(url, {}, 'bbb');
    a.start();
    b.start();
    await until(() => lines.filter((l) => /INSECURE/.test(l.msg)).length === 3, 3000, 'per-call warnings');
    a.media();
    b.media();
    a.stop();
    b.stop();
    await Promise.all([a.closed, b.closed]);
    const perCall = lines.filter((l) => /INSECURE/.test(l.msg) && l.callSid !== undefined);
    expect(perCall.map((l) => l.callSid).sort()).toEqual([a.callSid, b.callSid].sort());
    expect(perCall.every((l) => l.level === 40)).toBe(true);
  });
});
