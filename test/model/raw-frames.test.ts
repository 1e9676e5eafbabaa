// sendRaw writes masked text frames to the model socket itself (not through ws.send): a real ws
// server must receive every size of frame intact, in order with ws's own sends, and
// bufferedAmount must keep counting what sendRaw queued.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { connectModel, maskedTextFrame, type ModelConnection } from '../../src/model/client.js';

let wss: WebSocketServer | undefined;
let link: ModelConnection | undefined;

afterEach(async () => {
  link?.close();
  link = undefined;
  if (wss) {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss!.close(r));
    wss = undefined;
  }
});

/** A ws server that answers session.update with a matching session.updated and records every message. */
async function serve(): Promise<{ url: string; received: { text: string; binary: boolean }[]; peer: Promise<ServerSocket> }> {
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const received: { text: string; binary: boolean }[] = [];
  const peer = new Promise<ServerSocket>((resolve) => {
    wss!.on('connection', (ws) => {
      resolve(ws);
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const text = data.toString('utf8');
        received.push({ text, binary: isBinary });
        if (received.length === 1) {
          const fmt = { type: 'audio/pcmu' };
          ws.send(JSON.stringify({ type: 'session.updated', session: { type: 'realtime', audio: { input: { format: fmt }, output: { format: fmt } } } }));
        }
      });
    });
  });
  const port = (wss.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/v1`, received, peer };
}

function message(size: number, seed: number): Buffer {
  // JSON text of exactly `size` bytes (size >= 12), content varying with seed.
  const fill = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let body = '';
  for (let i = 0; body.length < size - 12; i++) body += fill[(i * 7 + seed) % fill.length];
  return Buffer.from(`{"x":"${body.slice(0, size - 12)}","n":0}`.slice(0, size));
}

describe('sendRaw writes its own masked frames', () => {
  it('builds RFC 6455 client text frames: FIN+text, mask bit, 7/16/64-bit lengths, payload XOR the key', () => {
    for (const n of [0, 1, 125, 126, 1327, 65535, 65536, 70000]) {
      const payload = Buffer.alloc(n, 0x41);
      const f = maskedTextFrame(payload);
      expect(f[0]).toBe(0x81);
      expect(f[1] & 0x80).toBe(0x80);
      let len = f[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        len = f.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        len = Number(f.readBigUInt64BE(2));
        off = 10;
      }
      expect(len).toBe(n);
      const key = f.subarray(off, off + 4);
      expect(key[0] | key[1] | key[2] | key[3]).not.toBe(0);
      expect(f.length).toBe(off + 4 + n);
      const data = f.subarray(off + 4);
      for (let i = 0; i < n; i += 997) expect(data[i] ^ key[i & 3]).toBe(0x41);
      if (n > 0) expect(data[n - 1] ^ key[(n - 1) & 3]).toBe(0x41);
    }
  });

  it('a ws server receives every size intact as text, in order with ws sends, even when the caller reuses its buffer', async () => {
    const srv = await serve();
    link = connectModel({ apiKey: 'k', baseURL: srv.url, session: { format: 'pcmu' } as never, readyTimeoutMs: 3000 });
    await link.ready;
    const sizes = [12, 125, 126, 127, 263, 1327, 65535, 65536, 200_000];
    const scratch = new Uint8Array(300_000);
    const expected: string[] = [];
    sizes.forEach((size, k) => {
      const m = message(size, k);
      scratch.set(m, 7);
      link!.sendRaw(scratch.subarray(7, 7 + size));
      scratch.fill(0x20); // reused at once, like the WASM scratch of the next frame
      expected.push(m.toString());
      const ctl = { type: 'control', k };
      link!.send(ctl);
      expected.push(JSON.stringify(ctl));
    });
    // What is queued (the 200 kB frame may not fit the kernel's buffer at once) is counted.
    expect(link.bufferedAmount).toBeGreaterThanOrEqual(0);
    const deadline = Date.now() + 5000;
    while (srv.received.length < expected.length + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const got = srv.received.slice(1);
    expect(got.every((m) => !m.binary)).toBe(true);
    expect(got.map((m) => m.text)).toEqual(expected);
  });

  it('counts bytes written but not yet taken by the kernel in bufferedAmount', async () => {
    const srv = await serve();
    link = connectModel({ apiKey: 'k', baseURL: srv.url, session: { format: 'pcmu' } as never, readyTimeoutMs: 3000 });
    await link.ready;
    const peer = await srv.peer;
    // The server stops reading: the writes pile up in the client socket's buffer.
    (peer as unknown as { _socket: { pause(): void } })._socket.pause();
    const m = message(65536, 1);
    for (let i = 0; i < 200; i++) link.sendRaw(m);
    expect(link.bufferedAmount).toBeGreaterThan(1_000_000);
  });
});
