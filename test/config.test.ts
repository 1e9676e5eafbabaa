import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, CONFIG_TABLE, describeConfig, loadConfig } from '../src/config.js';

describe('config', () => {
  it('defaults to the Twilio sample surface: port 5050, local model when no key', () => {
    const c = loadConfig({});
    expect(c.port).toBe(5050);
    expect(c.openaiApiKey).toBeUndefined();
    expect(c.openaiBaseUrl).toBe('https://api.openai.com/v1');
    expect(c.openaiModel).toBe('gpt-realtime');
    expect(c.audioFormat).toBe('pcm24k');
    expect(c.bargeIn).toBe(true);
  });

  it('every default in the table is the default the code applies', () => {
    const c = loadConfig({}) as unknown as Record<string, unknown>;
    const numeric: Record<string, string> = {
      PORT: 'port', PLAYBACK_LEAD_MS: 'playbackLeadMs', MARK_INTERVAL_MS: 'markIntervalMs',
      ECHO_TAIL_MS: 'echoTailMs', VAD_THRESHOLD_DB: 'vadThresholdDb', VAD_MIN_SPEECH_MS: 'vadMinSpeechMs',
      VAD_HANGOVER_MS: 'vadHangoverMs', ECHO_MARGIN_DB: 'echoMarginDb',
      VAD_BOT_MIN_SPEECH_MS: 'vadBotMinSpeechMs', MODEL_CONNECT_TIMEOUT_MS: 'modelConnectTimeoutMs',
      START_TIMEOUT_MS: 'startTimeoutMs', QUEUE_SECONDS: 'queueSeconds', MAX_MESSAGE_BYTES: 'maxMessageBytes',
    };
    for (const [env, key] of Object.entries(numeric)) {
      const row = CONFIG_TABLE.find((e) => e.env === env);
      expect(row, env).toBeDefined();
      expect(String(c[key]), env).toBe(row!.default);
    }
  });

  it('rejects bad values with a message naming the variable', () => {
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT/);
    expect(() => loadConfig({ AUDIO_FORMAT: 'opus' })).toThrow(/AUDIO_FORMAT/);
    expect(() => loadConfig({ OPENAI_BASE_URL: 'ftp://x' })).toThrow(/OPENAI_BASE_URL/);
    expect(() => loadConfig({ BARGE_IN: 'maybe' })).toThrow(/BARGE_IN/);
    expect(() => loadConfig({ STREAM_PARAMETERS: 'novalue' })).toThrow(/STREAM_PARAMETERS/);
    expect(() => loadConfig({ INSTRUCTIONS_FILE: '/nonexistent/file' })).toThrow(/INSTRUCTIONS_FILE/);
  });

  it('parses stream parameters and the pcmu passthrough mode', () => {
    const c = loadConfig({ STREAM_PARAMETERS: 'tenant=abc, agent=intake', AUDIO_FORMAT: 'pcmu', BARGE_IN: 'off' });
    expect(c.streamParameters).toEqual({ tenant: 'abc', agent: 'intake' });
    expect(c.audioFormat).toBe('pcmu');
    expect(c.bargeIn).toBe(false);
  });

  it('the README carries the current configuration table', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(describeConfig());
  });
});
