// The simulator against a tiny in-test WebSocket server playing the bridge's part. Assertions
// are on message order and content, never on wall-clock thresholds: the simulator sends
// everything in call-time order, so "echo after the frame with timestamp T" is deterministic.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import alawmulaw from 'alawmulaw';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { readWav, writeWav } from '../../src/audio/wav.js';
import { runSimulateCli } from '../../src/simulate/cli.js';
import { simulateCall, SimulateConnectError, type SimReport } from '../../src/simulate/simulator.js';
import { parseControlMessage, type TwilioMessage } from '../../src/twilio/protocol.js';
import { validateRequest } from '../../src/twilio/signature.js';

const SPEED = 10;
const PATH = '/media-stream';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface Peer {
  url: string;
  port: number;
  /** Every text frame the simulator sent, parsed, in order. */
  got: Json[];
  headers: IncomingHttpHeaders[];
  close(): Promise<void>;
}

interface PeerCtx {
  ws: WebSocket;
  got: Json[];
  send(obj: object): void;
}

const peers: Peer[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

async function peer(
  onMessage: (msg: Json, ctx: PeerCtx) => void,
  verify?: (headers: IncomingHttpHeaders, port: number) => boolean,
): Promise<Peer> {
  const got: Json[] = [];
  const headers: IncomingHttpHeaders[] = [];
  let port = 0;
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    path: PATH,
    verifyClient: (info, cb) => {
      headers.push(info.req.headers);
      if (verify && !verify(info.req.headers, port)) cb(false, 403, 'Forbidden');
      else cb(true);
    },
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  port = (wss.address() as { port: number }).port;
  wss.on('connection', (ws) => {
    const ctx: PeerCtx = { ws, got, send: (o) => ws.send(JSON.stringify(o)) };
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      got.push(msg);
      onMessage(msg, ctx);
    });
  });
  const p: Peer = {
    url: `ws://127.0.0.1:${port}${PATH}`,
    port,
    got,
    headers,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
  peers.push(p);
  return p;
}

const silence = (ms: number): Int16Array => new Int16Array(ms * 8);
const tone = (ms: number, amp = 8000): Int16Array =>
  Int16Array.from({ length: ms * 8 }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * 440 * i) / 8000)));
const concat = <T extends Int16Array | Uint8Array>(ctor: new (n: number) => T, ...parts: T[]): T => {
  const out = new ctor(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
/** Distinct, non-silent mu-law codes (never 0xFF/0x7F, which decode to 0). */
const botAudio = (n: number, seed = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i + seed) % 0x7f);
const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');
const media = (streamSid: string, codes: Uint8Array) => ({ event: 'media', streamSid, media: { payload: b64(codes) } });
const ts = (m: Json): number => Number(m.media.timestamp);

/** What played, run by run, concatenated; and whether everything outside the runs is silence. */
function heardRuns(r: SimReport): { played: Uint8Array; silentElsewhere: boolean } {
  const parts: Uint8Array[] = [];
  const inRun = new Uint8Array(r.heardMulaw.length);
  for (const run of r.playback) {
    const a = run.startMs * 8;
    const b = run.endMs * 8;
    parts.push(r.heardMulaw.subarray(a, b));
    inRun.fill(1, a, b);
  }
  return { played: concat(Uint8Array, ...parts), silentElsewhere: r.heardMulaw.every((c, i) => inRun[i] === 1 || c === 0xff) };
}

describe('simulateCall', () => {
  it('sends connected, start, 20 ms media frames, dtmf and stop with one sequence counter', async () => {
    const token = 'test-token';
    const p = await peer(
      () => {},
      (h, port) => validateRequest(token, h['x-twilio-signature'] as string, `wss://127.0.0.1:${port}${PATH}`, {}),
    );
    const codes = Uint8Array.from({ length: 2000 }, (_, i) => i % 255); // 250 ms, last frame partial
    const r = await simulateCall({
      url: p.url,
      caller: { mulaw: codes },
      authToken: token,
      parameters: { tenant: 'abc123', agent: 'intake' },
      dtmf: [{ atMs: 50, digit: '5' }],
      speed: SPEED,
      tailMs: 100,
    });

    const msgs = p.got;
    expect(msgs[0]).toEqual({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    const parsed: TwilioMessage[] = msgs.map((m) => {
      const res = parseControlMessage(JSON.stringify(m));
      if (!res.ok) throw new Error(res.error);
      return res.message;
    });
    const start = parsed[1];
    if (start.event !== 'start') throw new Error('second message is not start');
    expect(start.sequenceNumber).toBe('1');
    expect(start.start).toMatchObject({
      tracks: ['inbound'],
      customParameters: { tenant: 'abc123', agent: 'intake' },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      streamSid: r.streamSid,
      callSid: r.callSid,
      accountSid: r.accountSid,
    });

    // One counter over everything after connected, starting at 1.
    expect(msgs.slice(1).map((m) => m.sequenceNumber)).toEqual(msgs.slice(1).map((_, i) => String(i + 1)));
    expect(msgs.slice(1).every((m) => m.streamSid === r.streamSid)).toBe(true);

    const frames = msgs.filter((m) => m.event === 'media');
    expect(frames.length).toBe(13 + 5); // ceil(2000/160) + 100 ms of tail
    expect(frames.map((m) => m.media.chunk)).toEqual(frames.map((_, i) => String(i + 1)));
    expect(frames.map(ts)).toEqual(frames.map((_, i) => 20 * (i + 1)));
    expect(frames.every((m) => m.media.track === 'inbound')).toBe(true);
    const sent = concat(Uint8Array, ...frames.map((m) => new Uint8Array(Buffer.from(m.media.payload, 'base64'))));
    expect(frames.every((m) => Buffer.from(m.media.payload, 'base64').length === 160)).toBe(true);
    expect(sent.subarray(0, 2000)).toEqual(codes);
    expect(sent.subarray(2000).every((c) => c === 0xff)).toBe(true);

    const dtmfAt = msgs.findIndex((m) => m.event === 'dtmf');
    expect(msgs[dtmfAt]).toMatchObject({ dtmf: { track: 'inbound_track', digit: '5' } });
    expect(ts(msgs[dtmfAt - 1])).toBe(40);
    expect(ts(msgs[dtmfAt + 1])).toBe(60);

    const stop = msgs[msgs.length - 1];
    expect(stop).toEqual({
      event: 'stop',
      sequenceNumber: String(msgs.length - 1),
      streamSid: r.streamSid,
      stop: { accountSid: r.accountSid, callSid: r.callSid },
    });
    expect(r).toMatchObject({ framesSent: 18, dtmfSent: 1, violations: 0, closedBy: 'client', closeCode: 1000, callDurationMs: 360 });
  });

  it('encodes PCM16 caller audio to mu-law frames', async () => {
    const p = await peer(() => {});
    const pcm = tone(100);
    await simulateCall({ url: p.url, caller: pcm, speed: SPEED, tailMs: 0 });
    const frames = p.got.filter((m) => m.event === 'media');
    expect(frames.length).toBe(5);
    const sent = concat(Uint8Array, ...frames.map((m) => new Uint8Array(Buffer.from(m.media.payload, 'base64'))));
    // Decoding what was sent gives the caller back within mu-law quantisation (independent decoder).
    const back = alawmulaw.mulaw.decode(sent);
    for (let i = 0; i < pcm.length; i++) expect(Math.abs(back[i] - pcm[i])).toBeLessThanOrEqual(Math.abs(pcm[i]) / 16 + 8);
  });

  it('echoes a mark only after playback passes it, and the heard track is exactly what the server sent', async () => {
    let firstTs = -1;
    const sentAudio: Uint8Array[] = [];
    const p = await peer((m, { send }) => {
      if (m.event === 'media' && firstTs < 0) {
        firstTs = ts(m);
        for (let i = 0; i < 25; i++) {
          const chunk = botAudio(160, i * 7); // 25 x 20 ms = 500 ms
          sentAudio.push(chunk);
          send(media(m.streamSid, chunk));
        }
        send({ event: 'mark', streamSid: m.streamSid, mark: { name: 'end-of-response' } });
      }
    });
    const r = await simulateCall({ url: p.url, caller: silence(1000), speed: SPEED, tailMs: 1000 });

    const echoAt = p.got.findIndex((m) => m.event === 'mark');
    expect(p.got[echoAt]).toEqual({ event: 'mark', sequenceNumber: expect.stringMatching(/^\d+$/), streamSid: r.streamSid, mark: { name: 'end-of-response' } });
    const lastTsBefore = ts(p.got.slice(0, echoAt).filter((m) => m.event === 'media').pop());
    // Playback of 500 ms starts no earlier than the frame that triggered it.
    expect(lastTsBefore).toBeGreaterThanOrEqual(firstTs + 480);
    expect(r).toMatchObject({ marksReceived: 1, marksEchoed: 1, marksEchoedByClear: 0, marksPending: 0, framesReceived: 25, bytesReceived: 4000, violations: 0 });
    expect(r.firstAudioMs).toBeGreaterThanOrEqual(firstTs);

    const { played, silentElsewhere } = heardRuns(r);
    expect(played).toEqual(concat(Uint8Array, ...sentAudio));
    expect(silentElsewhere).toBe(true);
    expect(r.heard.length).toBe(2000 * 8);
    expect(r.heard).toEqual(alawmulaw.mulaw.decode(r.heardMulaw));
    expect(r.audioPlayedMs).toBe(500);
  });

  it('clear drops the rest of the audio and echoes every pending mark at once, in order', async () => {
    let firstTs = -1;
    let clearedAt = -1;
    const sentAudio: Uint8Array[] = [];
    const p = await peer((m, { send, got }) => {
      if (m.event !== 'media') return;
      if (firstTs < 0) {
        firstTs = ts(m);
        for (let i = 0; i < 50; i++) {
          const chunk = botAudio(1600, i); // 50 x 200 ms = 10 s
          sentAudio.push(chunk);
          send(media(m.streamSid, chunk));
          if (i === 24) send({ event: 'mark', streamSid: m.streamSid, mark: { name: 'a' } });
        }
        send({ event: 'mark', streamSid: m.streamSid, mark: { name: 'b' } });
      } else if (clearedAt < 0 && ts(m) >= firstTs + 200) {
        clearedAt = got.length;
        send({ event: 'clear', streamSid: m.streamSid });
      }
    });
    const r = await simulateCall({ url: p.url, caller: silence(1000), speed: SPEED, tailMs: 500 });

    const marks = p.got.map((m, i) => ({ m, i })).filter(({ m }) => m.event === 'mark');
    expect(marks.map(({ m }) => m.mark.name)).toEqual(['a', 'b']);
    expect(marks[0].i).toBeGreaterThan(clearedAt - 1);
    expect(marks[1].i).toBe(marks[0].i + 1); // both at once
    expect(r).toMatchObject({ clearsReceived: 1, marksReceived: 2, marksEchoed: 2, marksEchoedByClear: 2, marksPending: 0, violations: 0 });

    const last = r.playback[r.playback.length - 1];
    expect(last.endedByClear).toBe(true);
    const { played, silentElsewhere } = heardRuns(r);
    const all = concat(Uint8Array, ...sentAudio);
    expect(played.length).toBeGreaterThan(0);
    expect(played.length).toBeLessThan(all.length);
    expect(played).toEqual(all.subarray(0, played.length));
    expect(silentElsewhere).toBe(true);
  });

  it('measures barge-in from the caller onset to the clear, and the response latency', async () => {
    let started = false;
    let cleared = false;
    let spoke = false;
    let answered = false;
    const p = await peer((m, { send }) => {
      if (m.event !== 'media') return;
      if (!started) {
        started = true;
        send(media(m.streamSid, botAudio(8000 * 3))); // 3 s greeting, one message
        return;
      }
      const pcm = alawmulaw.mulaw.decode(new Uint8Array(Buffer.from(m.media.payload, 'base64')));
      const loud = pcm.some((x) => Math.abs(x) > 1000);
      if (loud && !cleared) {
        cleared = true;
        send({ event: 'clear', streamSid: m.streamSid });
      }
      if (loud) spoke = true;
      if (!loud && spoke && !answered) {
        answered = true;
        send(media(m.streamSid, botAudio(1600, 3)));
        send({ event: 'mark', streamSid: m.streamSid, mark: { name: 'answer' } });
      }
    });
    const caller = concat(Int16Array, silence(600), tone(400), silence(1000));
    const r = await simulateCall({ url: p.url, caller, speed: SPEED, tailMs: 500 });

    expect(r.callerUtterances).toEqual([{ startMs: 600, endMs: 1000 }]);
    expect(r.bargeIns.length).toBe(1);
    const b = r.bargeIns[0];
    expect(b.onsetMs).toBe(600);
    // The server can only see the onset in the frame sent at 620 ms.
    expect(b.clearAtMs).toBeGreaterThanOrEqual(620);
    expect(b.latencyMs).toBe(b.clearAtMs! - 600);
    expect(r.bargeInLatencyMs).toBe(b.latencyMs);
    expect(r.clearsReceived).toBe(1);
    // The answer can only be sent after the first silent frame (sent at 1020 ms).
    expect(r.responseLatencyMs).toBeGreaterThanOrEqual(20);
    expect(r.responseLatenciesMs).toEqual([r.responseLatencyMs]);
    expect(r.firstAudioMs).toBeGreaterThanOrEqual(20);
    expect(r.underruns).toBe(0);
    expect(r.playback.length).toBe(2);
    expect(r.playback[0].endedByClear).toBe(true);
    expect(r.marksEchoed).toBe(1);
  });

  it('counts protocol violations in what the server sends', async () => {
    let done = false;
    const p = await peer((m, { ws, send }) => {
      if (m.event !== 'media' || done) return;
      done = true;
      ws.send('not json');
      send(media('MZ-someone-else', botAudio(160)));
      send({ event: 'media', streamSid: m.streamSid, media: { payload: '***' } });
      send({ event: 'hello', streamSid: m.streamSid });
      send({ event: 'mark', streamSid: m.streamSid, mark: {} });
      ws.send(Buffer.from([1, 2, 3]), { binary: true });
    });
    const r = await simulateCall({ url: p.url, caller: silence(200), speed: SPEED, tailMs: 200 });
    expect(r.violations).toBe(6);
    const text = r.violationMessages.join('\n');
    expect(text).toMatch(/invalid JSON/);
    expect(text).toMatch(/streamSid "MZ-someone-else" is not this call's/);
    expect(text).toMatch(/media\.payload: not valid base64/);
    expect(text).toMatch(/unknown event "hello"/);
    expect(text).toMatch(/mark\.name/);
    expect(text).toMatch(/binary frame/);
    expect(r.framesReceived).toBe(0);
  });

  it('rejects with the HTTP status when the upgrade is refused (bad signature)', async () => {
    const p = await peer(
      () => {},
      (h, port) => validateRequest('right', h['x-twilio-signature'] as string, `wss://127.0.0.1:${port}${PATH}`, {}),
    );
    const err = await simulateCall({ url: p.url, caller: silence(100), authToken: 'wrong', speed: SPEED }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimulateConnectError);
    expect((err as SimulateConnectError).statusCode).toBe(403);
  });

  it('signs over signUrl when given', async () => {
    const p = await peer(
      () => {},
      (h) => validateRequest('tok', h['x-twilio-signature'] as string, 'wss://public.example.com/media-stream', {}),
    );
    const r = await simulateCall({ url: p.url, caller: silence(40), authToken: 'tok', signUrl: 'wss://public.example.com/media-stream', speed: SPEED, tailMs: 0 });
    expect(r.closeCode).toBe(1000);
  });

  it('reports a server that hangs up first', async () => {
    const p = await peer((m, { ws }) => {
      if (m.event === 'start') ws.close(4000, 'bye');
    });
    const r = await simulateCall({ url: p.url, caller: silence(2000), speed: SPEED, tailMs: 0 });
    expect(r).toMatchObject({ closedBy: 'server', closeCode: 4000, closeReason: 'bye' });
    expect(r.framesSent).toBeLessThan(100);
  });
});

describe('runSimulateCli', () => {
  it('writes what the caller heard to --out as 8 kHz PCM16 and prints a report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-sim-'));
    try {
      const answer = botAudio(2400, 11); // 300 ms in one message
      let answered = false;
      let params: Json;
      const p = await peer((m, { send }) => {
        if (m.event === 'start') params = m.start.customParameters;
        if (m.event === 'media' && !answered) {
          answered = true;
          send(media(m.streamSid, answer));
        }
      });
      const inPath = join(dir, 'caller.wav');
      const outPath = join(dir, 'heard.wav');
      const { writeFileSync } = await import('node:fs');
      writeFileSync(inPath, writeWav({ sampleRate: 8000, channels: 1, codec: 'pcm16', data: silence(500) }));
      const out: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
      let code: number;
      try {
        code = await runSimulateCli(['--url', p.url, '--in', inPath, '--out', outPath, '--speed', '10', '--tail-ms', '600', '--param', 'tenant=abc=1']);
      } finally {
        spy.mockRestore();
      }
      expect(code).toBe(0);
      expect(params).toEqual({ tenant: 'abc=1' });
      expect(out.join('')).toMatch(/first audio\s+\d+ ms/);

      const heard = readWav(new Uint8Array(readFileSync(outPath)));
      expect(heard).toMatchObject({ sampleRate: 8000, channels: 1, codec: 'pcm16' });
      expect(heard.data.length).toBe(1100 * 8);
      const expected = alawmulaw.mulaw.decode(answer);
      const startAt = (heard.data as Int16Array).findIndex((x) => x !== 0);
      expect(startAt).toBeGreaterThanOrEqual(20 * 8);
      expect(heard.data.subarray(startAt, startAt + expected.length)).toEqual(expected);
      expect(heard.data.subarray(0, startAt).every((x) => x === 0)).toBe(true);
      expect(heard.data.subarray(startAt + expected.length).every((x) => x === 0)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses non-8 kHz input and bad arguments with exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-sim-'));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const inPath = join(dir, 'c16.wav');
      const { writeFileSync } = await import('node:fs');
      writeFileSync(inPath, writeWav({ sampleRate: 16000, channels: 1, codec: 'pcm16', data: silence(100) }));
      expect(await runSimulateCli(['--url', 'ws://127.0.0.1:1/x', '--in', inPath])).toBe(2);
      expect(await runSimulateCli(['--in', inPath])).toBe(2);
      expect(await runSimulateCli(['--url', 'ws://x', '--in', inPath, '--speed', '0'])).toBe(2);
      expect(await runSimulateCli(['--url', 'ws://x', '--in', inPath, '--param', 'novalue'])).toBe(2);
      expect(await runSimulateCli(['--bogus'])).toBe(2);
      expect(err.mock.calls.map((c) => String(c[0])).join('')).toMatch(/16000 Hz; the simulator needs 8000 Hz/);
    } finally {
      err.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
