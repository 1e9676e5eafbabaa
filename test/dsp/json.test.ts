// The hot-path JSON key scanner on real Twilio/OpenAI message shapes, adversarial strings,
// truncation, and random documents checked against JSON.parse.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  JSON_ESCAPED,
  JSON_NOT_FOUND,
  jsonFindRaw,
  jsonFindString,
  jsonKey,
  jsonLastLen,
} from '../../src/dsp/json.js';
import { loadDsp } from '../../src/dsp/wasm.js';

const dsp = loadDsp();
const CAP = 1 << 16;
const MSG = dsp.dsp_alloc(CAP + 64);
const mem = () => new Uint8Array(dsp.memory.buffer);

/** Places `text` at MSG (followed by `tail`, to catch reads past len) and scans it. */
function place(text: string | Uint8Array, tail = ''): Uint8Array {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  mem().set(bytes, MSG);
  mem().set(Buffer.from(tail), MSG + bytes.length);
  return bytes;
}

type Found = { value: string } | 'escaped' | null;

function findString(text: string | Uint8Array, key: string, len?: number, tail = '"}}'): Found {
  const bytes = place(text, tail);
  const n = len ?? bytes.length;
  const off = jsonFindString(MSG, n, jsonKey(key));
  if (off === JSON_NOT_FOUND) return null;
  if (off === JSON_ESCAPED) return 'escaped';
  expect(off).toBeGreaterThanOrEqual(0);
  const l = jsonLastLen();
  expect(off + l).toBeLessThan(n); // the closing quote is inside the message
  expect(bytes[off - 1]).toBe(0x22);
  expect(bytes[off + l]).toBe(0x22);
  return { value: Buffer.from(bytes.subarray(off, off + l)).toString() };
}

function findRaw(text: string | Uint8Array, key: string, len?: number, tail = '0}]'): string | null {
  const bytes = place(text, tail);
  const off = jsonFindRaw(MSG, len ?? bytes.length, jsonKey(key));
  if (off === JSON_NOT_FOUND) return null;
  expect(off).toBeGreaterThanOrEqual(0);
  return Buffer.from(bytes.subarray(off, off + jsonLastLen())).toString();
}

const PAYLOAD = Buffer.from(Uint8Array.from({ length: 160 }, (_, i) => (i * 37) & 0xff)).toString('base64');

const twilioMedia = JSON.stringify({
  event: 'media',
  sequenceNumber: '2',
  streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0',
  media: { track: 'inbound', chunk: '1', timestamp: '52', payload: PAYLOAD },
});

const twilioStart = JSON.stringify({
  event: 'start',
  sequenceNumber: '1',
  streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0',
  start: {
    accountSid: 'AC00000000000000000000000000000000',
    streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0',
    callSid: 'CA00000000000000000000000000000000',
    tracks: ['inbound'],
    customParameters: { tenant: 'abc123', note: '"payload":"evil", "delta": "x' },
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
  },
});

const DELTA = Buffer.from(Uint8Array.from({ length: 4800 }, (_, i) => (i * 11) & 0xff)).toString('base64');
const openaiDelta = JSON.stringify({
  type: 'response.output_audio.delta',
  event_id: 'event_Bx1',
  response_id: 'resp_C2',
  item_id: 'item_D3',
  output_index: 0,
  content_index: 0,
  delta: DELTA,
});

describe('real message shapes', () => {
  it('Twilio media: payload, event, timestamp, sequenceNumber', () => {
    expect(findString(twilioMedia, 'payload')).toEqual({ value: PAYLOAD });
    expect(findString(twilioMedia, 'event')).toEqual({ value: 'media' });
    expect(findString(twilioMedia, 'timestamp')).toEqual({ value: '52' });
    expect(findString(twilioMedia, 'sequenceNumber')).toEqual({ value: '2' });
    expect(findRaw(twilioMedia, 'media')).toBe(JSON.stringify(JSON.parse(twilioMedia).media));
  });

  it('Twilio start: a customParameter value that contains key text is skipped', () => {
    expect(findString(twilioStart, 'payload')).toBeNull();
    expect(findString(twilioStart, 'delta')).toBeNull();
    expect(findString(twilioStart, 'note')).toBe('escaped');
    expect(findString(twilioStart, 'tenant')).toEqual({ value: 'abc123' });
    expect(findString(twilioStart, 'encoding')).toEqual({ value: 'audio/x-mulaw' });
    expect(findRaw(twilioStart, 'sampleRate')).toBe('8000');
    expect(findRaw(twilioStart, 'channels')).toBe('1');
    expect(findRaw(twilioStart, 'tracks')).toBe('["inbound"]');
  });

  it('a payload after a tricky customParameter-like value is still found', () => {
    const msg = '{"event":"media","note":"say \\"payload\\":\\"nope\\" ok","media":{"payload":"AAAA"}}';
    expect(JSON.parse(msg).media.payload).toBe('AAAA');
    expect(findString(msg, 'payload')).toEqual({ value: 'AAAA' });
    // a value equal to the key name is not a key
    expect(findString('{"event":"payload","payload":"QUJD"}', 'payload')).toEqual({ value: 'QUJD' });
  });

  it('OpenAI output_audio.delta: delta, type and numeric fields', () => {
    expect(findString(openaiDelta, 'delta')).toEqual({ value: DELTA });
    expect(findString(openaiDelta, 'type')).toEqual({ value: 'response.output_audio.delta' });
    expect(findString(openaiDelta, 'item_id')).toEqual({ value: 'item_D3' });
    expect(findRaw(openaiDelta, 'output_index')).toBe('0');
    expect(findRaw(openaiDelta, 'content_index')).toBe('0');
    expect(findRaw(openaiDelta, 'item_id')).toBe('"item_D3"');
  });

  it('reordered keys and pretty-printed whitespace', () => {
    const o = JSON.parse(twilioMedia);
    const reordered = JSON.stringify({ media: { payload: PAYLOAD, timestamp: '52' }, streamSid: o.streamSid, event: 'media' });
    expect(findString(reordered, 'payload')).toEqual({ value: PAYLOAD });
    expect(findString(reordered, 'event')).toEqual({ value: 'media' });
    for (const indent of [1, 2, '\t', '\r\n ']) {
      const pretty = JSON.stringify(JSON.parse(openaiDelta), null, indent);
      expect(findString(pretty, 'delta')).toEqual({ value: DELTA });
      expect(findRaw(pretty, 'output_index')).toBe('0');
    }
    expect(findString('{ "payload" \t\r\n: \n "QUJD" }', 'payload')).toEqual({ value: 'QUJD' });
  });

  it('escapes in the value report JSON_ESCAPED; escapes elsewhere are skipped', () => {
    expect(findString('{"payload":"QU\\/D"}', 'payload')).toBe('escaped');
    expect(findString('{"payload":"\\u0041BCD"}', 'payload')).toBe('escaped');
    expect(findString('{"x":"a\\\\","payload":"QUJD"}', 'payload')).toEqual({ value: 'QUJD' });
    expect(findString('{"x":"\\"","payload":"QUJD"}', 'payload')).toEqual({ value: 'QUJD' });
    // escaped key text is compared raw: "pay\u006coad" is not the bytes "payload"
    expect(findString('{"pay\\u006coad":"x","payload":"QUJD"}', 'payload')).toEqual({ value: 'QUJD' });
  });

  it('the first occurrence wins; non-string values are passed over by json_find_string', () => {
    expect(findString('{"a":{"payload":"one"},"payload":"two"}', 'payload')).toEqual({ value: 'one' });
    expect(findString('{"payload":"one","payload":"two"}', 'payload')).toEqual({ value: 'one' });
    expect(findString('{"payload":5,"m":{"payload":"two"}}', 'payload')).toEqual({ value: 'two' });
    expect(findString('{"payload":null}', 'payload')).toBeNull();
    expect(findString('{"payload":{"payload":"inner"}}', 'payload')).toEqual({ value: 'inner' });
    expect(findRaw('{"payload":{"payload":"inner"}}', 'payload')).toBe('{"payload":"inner"}');
    expect(findString('{"payload":""}', 'payload')).toEqual({ value: '' });
  });

  it('json_find_raw tokens', () => {
    expect(findRaw('{"n":-1.5e3,"x":1}', 'n')).toBe('-1.5e3');
    expect(findRaw('{"n":true}', 'n')).toBe('true');
    expect(findRaw('{"n" : 42 }', 'n')).toBe('42');
    expect(findRaw('{"n":[1,[2,"]"],{"a":"}"}],"x":1}', 'n')).toBe('[1,[2,"]"],{"a":"}"}]');
    expect(findRaw('{"n":"a\\"b","x":1}', 'n')).toBe('"a\\"b"');
    expect(findRaw('{"n":,"x":1}', 'n')).toBeNull();
    expect(findRaw('{"x":1}', 'n')).toBeNull();
  });

  it('not JSON at all, empty input, key absent', () => {
    expect(findString('', 'payload')).toBeNull();
    expect(findString('payload', 'payload')).toBeNull();
    expect(findString('"payload"', 'payload')).toBeNull();
    expect(findString('"payload":', 'payload')).toBeNull();
    expect(findString(twilioMedia, 'nope')).toBeNull();
  });
});

describe('truncated input never reads past len', () => {
  // Memory after the cut holds bytes that would complete the value if they were read.
  for (const [name, msg, key] of [
    ['Twilio media', twilioMedia, 'payload'],
    ['OpenAI delta', openaiDelta.slice(0, 400) + '","delta":"QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJD"}', 'delta'],
    ['start', twilioStart, 'tenant'],
  ] as const) {
    it(`${name}: every prefix gives -1 or the complete value`, () => {
      const bytes = Buffer.from(msg);
      const full = findString(bytes, key);
      expect(full).not.toBeNull();
      const end = bytes.indexOf(Buffer.from((full as { value: string }).value + '"')) + Buffer.byteLength((full as { value: string }).value);
      for (let n = 0; n <= bytes.length; n++) {
        const got = findString(bytes, key, n);
        if (n > end) expect(got).toEqual(full);
        else expect(got, `prefix ${n}`).toBeNull();
      }
    });
  }

  it('json_find_raw on prefixes of numbers and objects', () => {
    const msg = Buffer.from('{"output_index":12345,"media":{"a":[1,2]},"z":0}');
    const endNum = msg.indexOf(',');
    const endObj = msg.indexOf('},"z"') + 1;
    for (let n = 0; n <= msg.length; n++) {
      const num = findRaw(msg, 'output_index', n, '999}');
      expect(num).toBe(n > endNum ? '12345' : null);
      const obj = findRaw(msg, 'media', n, '}}}');
      expect(obj).toBe(n >= endObj ? '{"a":[1,2]}' : null);
    }
  });
});

// ------------------------------------------------------------------------------------------------
// Random documents: the scanner must agree with JSON.parse walked in document order.

type J = null | boolean | number | string | J[] | { [k: string]: J };

/** First string value of `key` in document order (as JSON.stringify writes it). */
function modelFind(v: J, key: string): { value: string } | undefined {
  if (Array.isArray(v)) {
    for (const el of v) {
      const r = modelFind(el, key);
      if (r) return r;
    }
  } else if (v !== null && typeof v === 'object') {
    for (const [k, val] of Object.entries(v)) {
      if (k === key && typeof val === 'string') return { value: val };
      const r = modelFind(val, key);
      if (r) return r;
    }
  }
  return undefined;
}

const tricky = fc.constantFrom(
  '"payload":"',
  'payload',
  '\\',
  '"delta": "x"',
  '{"payload":"x"}',
  'a"b',
  'é€😀',
  '\u0000\n\t',
  PAYLOAD,
);
const keyArb = fc.oneof(
  { arbitrary: fc.constantFrom('payload', 'delta', 'media', 'event', 'payload ', 'Payload'), weight: 3 },
  // never integer-like, so Object.entries keeps document order
  { arbitrary: fc.string({ maxLength: 6 }).map((s) => 'k' + s), weight: 1 },
);
const { doc } = fc.letrec<{ doc: J; value: J }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    { arbitrary: fc.string({ maxLength: 12 }), weight: 3 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 6 }), weight: 2 },
    { arbitrary: tricky, weight: 2 },
    { arbitrary: fc.integer(), weight: 1 },
    { arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }), weight: 1 },
    { arbitrary: fc.boolean(), weight: 1 },
    { arbitrary: fc.constant(null), weight: 1 },
    { arbitrary: fc.array(tie('value'), { maxLength: 4 }), weight: 1 },
    { arbitrary: tie('doc'), weight: 2 },
  ),
  doc: fc.dictionary(keyArb, tie('value'), { maxKeys: 5 }),
}));

describe('random documents agree with JSON.parse', () => {
  it('json_find_string (property)', () => {
    const seen = { found: 0, escaped: 0, none: 0 };
    fc.assert(
      fc.property(doc, fc.constantFrom('payload', 'delta', 'media'), fc.constantFrom(undefined, 1, '\t'), (d, key, indent) => {
        const text = JSON.stringify(d, null, indent);
        const want = modelFind(d, key);
        const got = findString(text, key);
        if (!want) expect(got).toBeNull();
        else if (JSON.stringify(want.value).includes('\\')) expect(got).toBe('escaped');
        else expect(got).toEqual(want);
        seen[got === null ? 'none' : got === 'escaped' ? 'escaped' : 'found']++;
      }),
      { numRuns: 1500, seed: 711 },
    );
    // the generator must exercise every outcome, or the property proves little
    expect(seen.found).toBeGreaterThan(150);
    expect(seen.escaped).toBeGreaterThan(40);
    expect(seen.none).toBeGreaterThan(100);
  });

  it('json_find_raw gives the serialized first value (property)', () => {
    fc.assert(
      fc.property(doc, fc.constantFrom('payload', 'media'), (d, key) => {
        const text = JSON.stringify(d);
        const got = findRaw(text, key);
        // model: the first property named key in document order, whatever its value
        const first = (v: J): { v: J } | undefined => {
          if (Array.isArray(v)) {
            for (const el of v) {
              const r = first(el);
              if (r) return r;
            }
          } else if (v !== null && typeof v === 'object') {
            for (const [k, val] of Object.entries(v)) {
              if (k === key) return { v: val };
              const r = first(val);
              if (r) return r;
            }
          }
          return undefined;
        };
        const want = first(d);
        expect(got).toBe(want ? JSON.stringify(want.v) : null);
      }),
      { numRuns: 1000, seed: 712 },
    );
  });

  it('random prefixes of random documents never return out-of-range values (property)', () => {
    fc.assert(
      fc.property(doc, fc.nat(), (d, cut) => {
        const bytes = Buffer.from(JSON.stringify(d));
        const n = bytes.length === 0 ? 0 : cut % (bytes.length + 1);
        const got = findString(bytes, 'payload', n);
        const full = findString(bytes, 'payload');
        if (got !== null) expect(got).toEqual(full);
      }),
      { numRuns: 500, seed: 713 },
    );
  });
});

// ------------------------------------------------------------------------------------------------
// json_find_strings: several keys in one pass, each with exactly the result of its own scan.

interface MultiExports {
  json_find_strings(msg: number, len: number, keys: number, count: number): number;
  json_found(k: number): number;
  json_found_len(k: number): number;
}
const multi = dsp as unknown as MultiExports;
const TABLE = dsp.dsp_alloc(64);

/** json_find_strings over `text` (with a completing tail after len) vs one findString per key. */
function findMany(text: string | Uint8Array, names: string[], len?: number, tail = '"}}'): Found[] {
  const bytes = place(text, tail);
  const n = len ?? bytes.length;
  const table = new Int32Array(dsp.memory.buffer, TABLE, 2 * names.length);
  names.forEach((name, k) => {
    const key = jsonKey(name);
    table[2 * k] = key.ptr;
    table[2 * k + 1] = key.len;
  });
  const count = multi.json_find_strings(MSG, n, TABLE, names.length);
  const got: Found[] = names.map((_, k) => {
    const off = multi.json_found(k);
    if (off === JSON_NOT_FOUND) return null;
    if (off === JSON_ESCAPED) return 'escaped';
    expect(off).toBeGreaterThanOrEqual(0);
    const l = multi.json_found_len(k);
    expect(off + l).toBeLessThan(n);
    return { value: Buffer.from(bytes.subarray(off, off + l)).toString() };
  });
  expect(count).toBe(got.filter((g) => g !== null && g !== 'escaped').length);
  return got;
}

describe('json_find_strings', () => {
  const deltaKeys = ['type', 'item_id', 'delta'];
  const mediaKeys = ['event', 'payload', 'timestamp'];

  it('finds the keys of real messages in one pass, as the single-key scans do', () => {
    expect(findMany(twilioMedia, mediaKeys)).toEqual([{ value: 'media' }, { value: PAYLOAD }, { value: '52' }]);
    expect(findMany(openaiDelta, deltaKeys)).toEqual([
      { value: 'response.output_audio.delta' }, { value: 'item_D3' }, { value: DELTA },
    ]);
    expect(findMany(twilioStart, ['payload', 'tenant', 'note', 'encoding'])).toEqual([
      null, { value: 'abc123' }, 'escaped', { value: 'audio/x-mulaw' },
    ]);
    for (const indent of [1, '\t', '\r\n ']) {
      const pretty = JSON.stringify(JSON.parse(openaiDelta), null, indent);
      expect(findMany(pretty, deltaKeys)).toEqual(deltaKeys.map((k) => findString(pretty, k)));
    }
  });

  it('duplicate, empty, long and absent keys; counts beyond four are clamped', () => {
    const msg = '{"":"empty","a":"x","payload":"one","kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":"long","payload":"two"}';
    const long = 'k'.repeat(40);
    expect(findMany(msg, ['payload', 'payload', '', long])).toEqual([
      { value: 'one' }, { value: 'one' }, { value: 'empty' }, { value: 'long' },
    ]);
    expect(findMany(msg, ['nope', 'a'])).toEqual([null, { value: 'x' }]);
    expect(multi.json_find_strings(MSG, 10, TABLE, 0)).toBe(0);
    expect(multi.json_found(4)).toBe(JSON_NOT_FOUND);
    expect(multi.json_found(-1)).toBe(JSON_NOT_FOUND);
    expect(multi.json_found_len(7)).toBe(0);
  });

  it('a value that is itself followed by a colon is also a key, as in the single-key walk', () => {
    // not JSON, but the scan must not depend on which keys are asked for together
    const msg = '{"a":"payload":"x","payload":"y","b":"c"}';
    expect(findMany(msg, ['a', 'payload', 'b'])).toEqual(['a', 'payload', 'b'].map((k) => findString(msg, k)));
    expect(findString(msg, 'payload')).toEqual({ value: 'x' });
  });

  // Documents without any backslash take the quote-pair walk, the others the general one; both
  // must agree with the single-key scan and with JSON.parse, whole and cut anywhere.
  const plainDoc = fc.letrec<{ doc: J; value: J }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      { arbitrary: fc.stringMatching(/^[ -!#-[\]-~]{0,12}$/), weight: 3 },
      { arbitrary: fc.constantFrom('payload', 'delta', 'event', PAYLOAD.slice(0, 40), ''), weight: 2 },
      { arbitrary: fc.integer(), weight: 1 },
      { arbitrary: fc.constant(null), weight: 1 },
      { arbitrary: fc.array(tie('value'), { maxLength: 4 }), weight: 1 },
      { arbitrary: tie('doc'), weight: 2 },
    ),
    doc: fc.dictionary(fc.constantFrom('payload', 'delta', 'media', 'event', 'payloa', 'k', ''), tie('value'), { maxKeys: 5 }),
  })).doc;

  it('agrees with json_find_string and JSON.parse on random documents and their prefixes (property)', () => {
    const seen = { plain: 0, escaped: 0, found: 0 };
    fc.assert(
      fc.property(
        fc.oneof(doc, plainDoc),
        fc.uniqueArray(fc.constantFrom('payload', 'delta', 'media', 'event', ''), { minLength: 1, maxLength: 4 }),
        fc.constantFrom(undefined, 1),
        fc.nat(),
        (d, keys, indent, cut) => {
          const text = JSON.stringify(d, null, indent);
          const bytes = Buffer.from(text);
          if (!text.includes('\\')) seen.plain++;
          for (const n of [bytes.length, cut % (bytes.length + 1)]) {
            const got = findMany(bytes, keys, n);
            keys.forEach((k, j) => expect(got[j], `${k} in ${n} of ${text}`).toEqual(findString(bytes, k, n)));
            if (n === bytes.length) {
              keys.forEach((k, j) => {
                const want = modelFind(d, k);
                if (!want) expect(got[j]).toBeNull();
                else if (JSON.stringify(want.value).includes('\\')) expect(got[j]).toBe('escaped');
                else expect(got[j]).toEqual(want);
              });
            }
            seen.escaped += got.filter((g) => g === 'escaped').length;
            seen.found += got.filter((g) => g !== null && g !== 'escaped').length;
          }
        },
      ),
      { numRuns: 1500, seed: 714 },
    );
    expect(seen.plain).toBeGreaterThan(400);
    expect(seen.escaped).toBeGreaterThan(50);
    expect(seen.found).toBeGreaterThan(500);
  });
});
