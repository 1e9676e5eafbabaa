// A real OpenAI key with no Twilio signature check lets anyone who finds the URL spend the
// operator's credits: `start` refuses it (exit code 2, a message saying what to set) unless
// ALLOW_UNSIGNED says this is a development setup. The local model needs no token.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkSignaturePolicy, ConfigError, CONFIG_TABLE, loadConfig, signatureMode } from '../../src/config.js';
import { runStart } from '../../src/start.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('signature policy', () => {
  it('classifies every combination of key, token and ALLOW_UNSIGNED', () => {
    const mode = (env: Record<string, string>) => signatureMode(loadConfig(env));
    expect(mode({})).toBe('local');
    expect(mode({ ALLOW_UNSIGNED: '1' })).toBe('local');
    expect(mode({ TWILIO_AUTH_TOKEN: 't' })).toBe('signed');
    expect(mode({ OPENAI_API_KEY: 'sk-x', TWILIO_AUTH_TOKEN: 't' })).toBe('signed');
    expect(mode({ OPENAI_API_KEY: 'sk-x', TWILIO_AUTH_TOKEN: 't', ALLOW_UNSIGNED: '1' })).toBe('signed');
    expect(mode({ OPENAI_API_KEY: 'sk-x' })).toBe('refused');
    expect(mode({ OPENAI_API_KEY: 'sk-x', ALLOW_UNSIGNED: '0' })).toBe('refused');
    expect(mode({ OPENAI_API_KEY: 'sk-x', ALLOW_UNSIGNED: 'on' })).toBe('insecure');
    expect(mode({ OPENAI_API_KEY: 'sk-x', ALLOW_UNSIGNED: 'true' })).toBe('insecure');
  });

  it('checkSignaturePolicy throws a ConfigError naming both ways out', () => {
    const c = loadConfig({ OPENAI_API_KEY: 'sk-x' });
    expect(() => checkSignaturePolicy(c)).toThrow(ConfigError);
    expect(() => checkSignaturePolicy(c)).toThrow(/TWILIO_AUTH_TOKEN.*ALLOW_UNSIGNED/s);
    expect(checkSignaturePolicy(loadConfig({ OPENAI_API_KEY: 'sk-x', ALLOW_UNSIGNED: '1' }))).toBe('insecure');
  });

  it('ALLOW_UNSIGNED is in the configuration table, off by default, and must be on/off', () => {
    expect(CONFIG_TABLE.find((e) => e.env === 'ALLOW_UNSIGNED')?.default).toBe('off');
    expect(loadConfig({}).allowUnsigned).toBe(false);
    expect(() => loadConfig({ ALLOW_UNSIGNED: 'maybe' })).toThrow(/ALLOW_UNSIGNED/);
  });

  it('`start` with a key and no token exits with code 2 and a clear message, before listening', async () => {
    const stderr: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      stderr.push(String(s));
      return true;
    });
    const started = vi.fn();
    const code = await runStart({ OPENAI_API_KEY: 'sk-test', PORT: '0', HOST: '127.0.0.1', WORKERS: '0' }, { signals: false, started });
    expect(code).toBe(2);
    expect(started).not.toHaveBeenCalled();
    const msg = stderr.join('');
    expect(msg).toMatch(/configuration error/);
    expect(msg).toMatch(/TWILIO_AUTH_TOKEN/);
    expect(msg).toMatch(/ALLOW_UNSIGNED=1/);
  });

  it('the new limits have their documented defaults and ranges', () => {
    const c = loadConfig({});
    const row = (env: string) => CONFIG_TABLE.find((e) => e.env === env)!.default;
    expect(String(c.maxMessagesPerSecond)).toBe(row('MAX_MESSAGES_PER_S'));
    expect(String(c.modelMaxBufferedBytes)).toBe(row('MODEL_MAX_BUFFERED_BYTES'));
    expect(String(c.outboundPauseBytes)).toBe(row('OUTBOUND_PAUSE_BYTES'));
    expect(loadConfig({ MAX_MESSAGES_PER_S: '0' }).maxMessagesPerSecond).toBe(0);
    expect(() => loadConfig({ MAX_MESSAGES_PER_S: '-1' })).toThrow(/MAX_MESSAGES_PER_S/);
    expect(() => loadConfig({ OUTBOUND_PAUSE_BYTES: '2097152' })).toThrow(/OUTBOUND_PAUSE_BYTES.*WS_MAX_BACKPRESSURE_BYTES/);
    expect(loadConfig({ OUTBOUND_PAUSE_BYTES: '2097152', WS_MAX_BACKPRESSURE_BYTES: '4194304' }).outboundPauseBytes).toBe(2097152);
  });
});
