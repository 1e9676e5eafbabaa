import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { computeSignature, formParams, signatureUrlVariants, validateRequest } from '../../src/twilio/signature.js';

// Twilio's published example (docs and every official SDK's tests).
const TOKEN = '12345';
const URL_ = 'https://mycompany.com/myapp.php?foo=1&bar=2';
const PARAMS = {
  CallSid: 'CA1234567890ABCDE',
  Caller: '+14158675309',
  Digits: '1234',
  From: '+14158675309',
  To: '+18005551212',
};
const EXPECTED = 'RSOYDt4T1cUTdK1PDd93/VVr8B8=';
const PARAM_DATA = 'CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212';

// An independent HMAC over an explicit string, to state what a signature over a given URL is.
const hmac = (token: string, data: string): string => createHmac('sha1', token).update(data, 'utf8').digest('base64');

describe('computeSignature', () => {
  it('gives Twilio’s published signature for the documented example', () => {
    expect(computeSignature(TOKEN, URL_, PARAMS)).toBe(EXPECTED);
  });

  it('does not depend on the order params are given in', () => {
    const reversed = Object.fromEntries(Object.entries(PARAMS).reverse());
    expect(computeSignature(TOKEN, URL_, reversed)).toBe(EXPECTED);
  });

  it('signs the URL alone when there are no params (the WebSocket upgrade)', () => {
    const url = 'wss://bridge.example.com/media-stream';
    expect(computeSignature(TOKEN, url, {})).toBe(hmac(TOKEN, url));
  });

  it('takes each distinct value of a repeated field once, sorted, like twilio-node', () => {
    const url = 'https://example.com/hook';
    expect(computeSignature(TOKEN, url, { x: ['2', '1', '1'], a: 'z' })).toBe(hmac(TOKEN, url + 'az' + 'x1x2'));
  });
});

describe('validateRequest', () => {
  it('accepts the documented example and rejects tampering', () => {
    expect(validateRequest(TOKEN, EXPECTED, URL_, PARAMS)).toBe(true);
    expect(validateRequest(TOKEN, EXPECTED, URL_, { ...PARAMS, Digits: '9999' })).toBe(false);
    expect(validateRequest(TOKEN, EXPECTED, 'https://mycompany.com/myapp.php?foo=1&bar=3', PARAMS)).toBe(false);
    expect(validateRequest('54321', EXPECTED, URL_, PARAMS)).toBe(false);
    expect(validateRequest(TOKEN, EXPECTED.slice(0, -1), URL_, PARAMS)).toBe(false);
  });

  it('treats a missing or empty signature or a bad URL as invalid without throwing', () => {
    expect(validateRequest(TOKEN, undefined, URL_, PARAMS)).toBe(false);
    expect(validateRequest(TOKEN, '', URL_, PARAMS)).toBe(false);
    expect(validateRequest(TOKEN, EXPECTED, 'not a url', PARAMS)).toBe(false);
    expect(validateRequest('', EXPECTED, URL_, PARAMS)).toBe(false);
  });

  it('accepts a signature made over the URL with :443 when validating the URL without a port', () => {
    const sig = hmac(TOKEN, 'https://mycompany.com:443/myapp.php?foo=1&bar=2' + PARAM_DATA);
    expect(validateRequest(TOKEN, sig, URL_, PARAMS)).toBe(true);
  });

  it('accepts a signature made without a port when validating the URL with :443', () => {
    expect(validateRequest(TOKEN, EXPECTED, 'https://mycompany.com:443/myapp.php?foo=1&bar=2', PARAMS)).toBe(true);
  });

  it('handles :80 for http the same way', () => {
    const withPort = hmac(TOKEN, 'http://example.com:80/hook');
    const without = hmac(TOKEN, 'http://example.com/hook');
    expect(validateRequest(TOKEN, withPort, 'http://example.com/hook', {})).toBe(true);
    expect(validateRequest(TOKEN, without, 'http://example.com:80/hook', {})).toBe(true);
  });

  it('uses :443 for wss and :80 for ws (the Media Streams upgrade)', () => {
    const sig443 = hmac(TOKEN, 'wss://bridge.example.com:443/media-stream');
    expect(validateRequest(TOKEN, sig443, 'wss://bridge.example.com/media-stream', {})).toBe(true);
    const sig80 = hmac(TOKEN, 'ws://bridge.example.com:80/media-stream');
    expect(validateRequest(TOKEN, sig80, 'ws://bridge.example.com/media-stream', {})).toBe(true);
  });

  it('accepts a non-default port only when the signature covers it or omits the port', () => {
    const url = 'https://example.com:8443/hook';
    expect(validateRequest(TOKEN, hmac(TOKEN, url), url, {})).toBe(true);
    expect(validateRequest(TOKEN, hmac(TOKEN, 'https://example.com/hook'), url, {})).toBe(true);
    expect(validateRequest(TOKEN, hmac(TOKEN, 'https://example.com:9999/hook'), url, {})).toBe(false);
  });

  it('accepts an escaped or unescaped single quote in the query string either way (twilio-node spec)', () => {
    const a = "https://example.com/path?test=param'WithQuote";
    const b = 'https://example.com/path?test=param%27WithQuote';
    for (const signed of [a, b]) {
      for (const target of [a, b]) expect(validateRequest('s3cr3t', hmac('s3cr3t', signed), target, {})).toBe(true);
    }
  });

  it('lists the URL spellings it tries', () => {
    expect(signatureUrlVariants('https://example.com/p?q=1')).toEqual(
      expect.arrayContaining(['https://example.com/p?q=1', 'https://example.com:443/p?q=1']),
    );
  });
});

describe('formParams', () => {
  it('parses a form body, decoding + and %XX, with repeated fields as arrays', () => {
    expect(formParams('From=%2B14158675309&To=+18005551212&x=1&x=2')).toEqual({
      From: '+14158675309',
      To: ' 18005551212',
      x: ['1', '2'],
    });
  });

  it('round-trips the documented example through a form body', () => {
    const body = new URLSearchParams(PARAMS).toString();
    expect(validateRequest(TOKEN, EXPECTED, URL_, formParams(body))).toBe(true);
  });
});
