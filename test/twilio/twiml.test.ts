import { describe, expect, it } from 'vitest';
import { connectStreamTwiml, escapeXml, MAX_PARAMETER_LENGTH, TwimlError } from '../../src/twilio/twiml.js';

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>';

describe('connectStreamTwiml', () => {
  it('builds Connect/Stream with parameters in order', () => {
    const xml = connectStreamTwiml({
      streamUrl: 'wss://bridge.example.com/media-stream',
      statusCallback: 'https://bridge.example.com/stream-status',
      parameters: { tenant: 'abc123', agent: 'healthcare-intake' },
    });
    expect(xml).toBe(
      HEAD +
        '<Response><Connect><Stream url="wss://bridge.example.com/media-stream" statusCallback="https://bridge.example.com/stream-status">' +
        '<Parameter name="tenant" value="abc123"/><Parameter name="agent" value="healthcare-intake"/>' +
        '</Stream></Connect></Response>',
    );
  });

  it('writes a self-closing Stream when there are no parameters', () => {
    expect(connectStreamTwiml({ streamUrl: 'wss://h/ms' })).toBe(HEAD + '<Response><Connect><Stream url="wss://h/ms"/></Connect></Response>');
  });

  it('escapes XML special characters in every attribute', () => {
    const xml = connectStreamTwiml({
      streamUrl: 'wss://h/a&b',
      name: 'n"1',
      parameters: { 'k<>': `v&"'<>\n` },
    });
    expect(xml).toContain('url="wss://h/a&amp;b"');
    expect(xml).toContain('name="n&quot;1"');
    expect(xml).toContain('<Parameter name="k&lt;&gt;" value="v&amp;&quot;&apos;&lt;&gt;&#10;"/>');
  });

  it('rejects a non-wss stream URL', () => {
    expect(() => connectStreamTwiml({ streamUrl: 'ws://h/ms' })).toThrow(/wss:\/\/.*31920/);
    expect(() => connectStreamTwiml({ streamUrl: 'https://h/ms' })).toThrow(TwimlError);
    expect(() => connectStreamTwiml({ streamUrl: '/media-stream' })).toThrow(/not an absolute URL/);
  });

  it('rejects a query string (even an empty one) and fragments', () => {
    expect(() => connectStreamTwiml({ streamUrl: 'wss://h/ms?tenant=1' })).toThrow(/query string.*31922/);
    expect(() => connectStreamTwiml({ streamUrl: 'wss://h/ms?' })).toThrow(/query string/);
    expect(() => connectStreamTwiml({ streamUrl: 'wss://h/ms#x' })).toThrow(/fragment/);
  });

  it('rejects a non-http statusCallback', () => {
    expect(() => connectStreamTwiml({ streamUrl: 'wss://h/ms', statusCallback: 'ftp://h/x' })).toThrow(/http/);
  });

  it('accepts name+value of 499 characters and rejects 500 (rejects, never truncates)', () => {
    const name = 'k';
    const ok = 'v'.repeat(MAX_PARAMETER_LENGTH - name.length);
    expect(MAX_PARAMETER_LENGTH).toBe(499);
    expect(connectStreamTwiml({ streamUrl: 'wss://h/ms', parameters: { [name]: ok } })).toContain(`value="${ok}"`);
    expect(() => connectStreamTwiml({ streamUrl: 'wss://h/ms', parameters: { [name]: ok + 'v' } })).toThrow(/500/);
  });

  it('rejects an empty parameter name and characters XML cannot carry', () => {
    expect(() => connectStreamTwiml({ streamUrl: 'wss://h/ms', parameters: { '': 'x' } })).toThrow(/empty/);
    expect(() => connectStreamTwiml({ streamUrl: 'wss://h/ms', parameters: { k: 'a\u0001b' } })).toThrow(/XML cannot carry/);
    expect(() => connectStreamTwiml({ streamUrl: 'wss://h/ms', parameters: { k: '\uD800' } })).toThrow(/XML cannot carry/);
  });
});

describe('escapeXml', () => {
  it('keeps non-ASCII text and surrogate pairs as they are', () => {
    expect(escapeXml('héllo 😀')).toBe('héllo 😀');
  });
});
