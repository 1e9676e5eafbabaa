import { describe, expect, it } from 'vitest';
import {
  parseControlMessage,
  parseServerMessage,
  serializeClear,
  serializeMark,
  serializeMedia,
  TwilioProtocolError,
} from '../../src/twilio/protocol.js';

// Shapes as PROTOCOLS.md §1 documents them.
const START = {
  event: 'start',
  sequenceNumber: '1',
  streamSid: 'MZ00000000000000000000000000000001',
  start: {
    accountSid: 'AC00000000000000000000000000000001',
    streamSid: 'MZ00000000000000000000000000000001',
    callSid: 'CA00000000000000000000000000000001',
    tracks: ['inbound'],
    customParameters: { tenant: 'abc123' },
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
  },
};
const MEDIA = {
  event: 'media',
  sequenceNumber: '2',
  streamSid: 'MZ1',
  media: { track: 'inbound', chunk: '1', timestamp: '52', payload: Buffer.alloc(160, 0xff).toString('base64') },
};

const parse = (v: unknown) => parseControlMessage(JSON.stringify(v));
const errorOf = (v: unknown): string => {
  const r = typeof v === 'string' ? parseControlMessage(v) : parse(v);
  if (r.ok) throw new Error('expected a parse error');
  return r.error;
};

describe('parseControlMessage', () => {
  it('accepts every documented Twilio message', () => {
    const msgs = [
      { event: 'connected', protocol: 'Call', version: '1.0.0' },
      START,
      MEDIA,
      { event: 'dtmf', sequenceNumber: '9', streamSid: 'MZ1', dtmf: { track: 'inbound_track', digit: '1' } },
      { event: 'mark', sequenceNumber: '103', streamSid: 'MZ1', mark: { name: 'utterance-42-end' } },
      { event: 'stop', sequenceNumber: '250', streamSid: 'MZ1', stop: { accountSid: 'AC1', callSid: 'CA1' } },
    ];
    for (const m of msgs) {
      const r = parse(m);
      expect(r).toEqual({ ok: true, message: m });
    }
  });

  it('accepts UUID-style SIDs and unknown extra fields', () => {
    const r = parse({ ...MEDIA, streamSid: '8a7c2f2e-0b1d-4b5e-9a1c-0f0e0d0c0b0a', extra: { x: 1 } });
    expect(r.ok).toBe(true);
  });

  it('defaults a missing customParameters to {}', () => {
    const { customParameters: _, ...start } = START.start;
    const r = parse({ ...START, start });
    expect(r.ok && r.message.event === 'start' && r.message.start.customParameters).toEqual({});
  });

  it('rejects numbers where Twilio sends digit strings, naming the field', () => {
    expect(errorOf({ ...MEDIA, sequenceNumber: 2 })).toBe('sequenceNumber: expected a string of digits, got number 2');
    expect(errorOf({ ...MEDIA, media: { ...MEDIA.media, timestamp: 52 } })).toMatch(/^media\.timestamp: expected a string of digits, got number 52$/);
    expect(errorOf({ ...MEDIA, media: { ...MEDIA.media, chunk: '-1' } })).toMatch(/^media\.chunk:/);
    expect(errorOf({ ...MEDIA, media: { ...MEDIA.media, timestamp: '' } })).toMatch(/^media\.timestamp:/);
  });

  it('rejects strings where Twilio sends numbers in mediaFormat', () => {
    const bad = { ...START, start: { ...START.start, mediaFormat: { ...START.start.mediaFormat, sampleRate: '8000' } } };
    expect(errorOf(bad)).toBe('start.mediaFormat.sampleRate: expected a positive integer number, got string "8000"');
    const bad2 = { ...START, start: { ...START.start, mediaFormat: { ...START.start.mediaFormat, channels: 0 } } };
    expect(errorOf(bad2)).toMatch(/^start\.mediaFormat\.channels:/);
  });

  it('rejects missing objects and fields', () => {
    expect(errorOf({ event: 'media', sequenceNumber: '2', streamSid: 'MZ1' })).toBe('media: expected an object, got nothing');
    expect(errorOf({ event: 'stop', sequenceNumber: '2', streamSid: 'MZ1', stop: { callSid: 'CA1' } })).toMatch(/^stop\.accountSid:/);
    expect(errorOf({ event: 'mark', sequenceNumber: '2', streamSid: '', mark: { name: 'x' } })).toBe('streamSid: must not be empty');
  });

  it('rejects bad tracks, custom parameters, dtmf digits and payloads', () => {
    expect(errorOf({ ...START, start: { ...START.start, tracks: 'inbound' } })).toMatch(/^start\.tracks:/);
    expect(errorOf({ ...START, start: { ...START.start, customParameters: { n: 1 } } })).toMatch(/^start\.customParameters\.n:/);
    expect(errorOf({ event: 'dtmf', sequenceNumber: '9', streamSid: 'MZ1', dtmf: { track: 't', digit: '12' } })).toMatch(/^dtmf\.digit:/);
    expect(errorOf({ ...MEDIA, media: { ...MEDIA.media, payload: 'abc' } })).toMatch(/^media\.payload: not valid base64/);
  });

  it('rejects a start whose inner streamSid differs', () => {
    expect(errorOf({ ...START, start: { ...START.start, streamSid: 'MZ2' } })).toMatch(/differs/);
  });

  it('rejects non-JSON, non-objects and unknown events', () => {
    expect(errorOf('{')).toMatch(/^invalid JSON/);
    expect(errorOf('[1]')).toBe('expected a JSON object, got array');
    expect(errorOf({ event: 'clear', streamSid: 'MZ1' })).toBe('unknown event "clear"');
    expect(errorOf({ streamSid: 'MZ1' })).toBe('event: expected a string, got nothing');
  });
});

describe('server messages', () => {
  it('serializes mark, clear and media in the documented shapes', () => {
    expect(JSON.parse(serializeMark('MZ1', 'utterance-42-end'))).toEqual({ event: 'mark', streamSid: 'MZ1', mark: { name: 'utterance-42-end' } });
    expect(JSON.parse(serializeClear('MZ1'))).toEqual({ event: 'clear', streamSid: 'MZ1' });
    expect(JSON.parse(serializeMedia('MZ1', '/w=='))).toEqual({ event: 'media', streamSid: 'MZ1', media: { payload: '/w==' } });
  });

  it('escapes mark names and refuses empty ones', () => {
    const s = serializeMark('MZ1', 'a"b\\c\n');
    expect(JSON.parse(s).mark.name).toBe('a"b\\c\n');
    expect(() => serializeMark('MZ1', '')).toThrow(TwilioProtocolError);
    expect(() => serializeClear('')).toThrow(TwilioProtocolError);
    expect(() => serializeMedia('MZ1', 'not base64!')).toThrow(TwilioProtocolError);
  });

  it('parseServerMessage round-trips the serializers and rejects what Twilio would not accept', () => {
    expect(parseServerMessage(serializeClear('MZ1'))).toEqual({ ok: true, message: { event: 'clear', streamSid: 'MZ1' } });
    expect(parseServerMessage(serializeMark('MZ1', 'm'))).toMatchObject({ ok: true });
    expect(parseServerMessage('{"event":"media","streamSid":"MZ1","media":{"payload":"%%"}}')).toMatchObject({ ok: false, error: expect.stringMatching(/base64/) });
    expect(parseServerMessage('{"event":"start","streamSid":"MZ1"}')).toMatchObject({ ok: false, error: expect.stringMatching(/unknown event "start"/) });
  });
});
