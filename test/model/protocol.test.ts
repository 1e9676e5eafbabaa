import { describe, expect, it } from 'vitest';
import { isAudioDeltaPrefix, realtimeURL } from '../../src/model/client.js';
import { buildSessionUpdate, checkSessionFormats } from '../../src/model/protocol.js';

describe('buildSessionUpdate', () => {
  it('builds the GA session.update of PROTOCOLS.md for PCM 24 kHz', () => {
    const ev = buildSessionUpdate({
      format: 'pcm24k',
      model: 'gpt-realtime',
      voice: 'marin',
      instructions: 'Be brief.',
      tools: [{ type: 'function', name: 'transfer', description: 'Transfer the call', parameters: {} }],
    });
    expect(ev).toEqual({
      type: 'session.update',
      session: {
        type: 'realtime',
        model: 'gpt-realtime',
        output_modalities: ['audio'],
        instructions: 'Be brief.',
        tools: [{ type: 'function', name: 'transfer', description: 'Transfer the call', parameters: {} }],
        audio: {
          input: {
            format: { type: 'audio/pcm', rate: 24000 },
            turn_detection: {
              type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500,
              create_response: true, interrupt_response: true,
            },
          },
          output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'marin' },
        },
      },
    });
  });

  it('uses audio/pcmu in and out for pcmu and never a beta field name', () => {
    const ev = buildSessionUpdate({ format: 'pcmu', voice: 'cedar' });
    const s = ev.session as any;
    expect(s.audio.input.format).toEqual({ type: 'audio/pcmu' });
    expect(s.audio.output.format).toEqual({ type: 'audio/pcmu' });
    const text = JSON.stringify(ev);
    for (const beta of ['input_audio_format', 'output_audio_format', 'g711_ulaw', 'pcm16', '"modalities"']) {
      expect(text).not.toContain(beta);
    }
    expect(s.audio.output.voice).toBe('cedar');
    expect('voice' in s).toBe(false);
    expect('turn_detection' in s).toBe(false);
  });

  it('merges a partial server_vad over the defaults, passes semantic_vad, and keeps null', () => {
    const a = buildSessionUpdate({ format: 'pcmu', turnDetection: { silence_duration_ms: 300 } }).session as any;
    expect(a.audio.input.turn_detection).toEqual({
      type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 300,
      create_response: true, interrupt_response: true,
    });
    const b = buildSessionUpdate({ format: 'pcmu', turnDetection: { type: 'semantic_vad', eagerness: 'high' } }).session as any;
    expect(b.audio.input.turn_detection).toEqual({ type: 'semantic_vad', eagerness: 'high' });
    const c = buildSessionUpdate({ format: 'pcmu', turnDetection: null }).session as any;
    expect(c.audio.input.turn_detection).toBeNull();
  });
});

describe('checkSessionFormats', () => {
  const updated = (input: unknown, output: unknown, extra: object = {}) => ({
    type: 'session.updated',
    event_id: 'e1',
    session: { type: 'realtime', audio: { input: { format: input }, output: { format: output } }, ...extra },
  });

  it('accepts what was asked', () => {
    expect(checkSessionFormats(updated({ type: 'audio/pcmu' }, { type: 'audio/pcmu' }), 'pcmu')).toBeNull();
    expect(checkSessionFormats(updated({ type: 'audio/pcm', rate: 24000 }, { type: 'audio/pcm', rate: 24000 }), 'pcm24k')).toBeNull();
  });

  it('reports a server that kept PCM 24 kHz when mu-law was asked (beta names ignored)', () => {
    const msg = checkSessionFormats(updated({ type: 'audio/pcm', rate: 24000 }, { type: 'audio/pcm', rate: 24000 }), 'pcmu');
    expect(msg).toMatch(/format mismatch/);
    expect(msg).toContain('{"type":"audio/pcmu"}');
    expect(msg).toContain('input format is {"type":"audio/pcm","rate":24000}');
    expect(msg).toContain('output format is');
  });

  it('reports a one-sided mismatch, a wrong rate, a missing audio block and a beta-shaped session', () => {
    expect(checkSessionFormats(updated({ type: 'audio/pcmu' }, { type: 'audio/pcma' }), 'pcmu')).toMatch(/output format is \{"type":"audio\/pcma"\}/);
    expect(checkSessionFormats(updated({ type: 'audio/pcm', rate: 16000 }, { type: 'audio/pcm', rate: 24000 }), 'pcm24k')).toMatch(/input format/);
    expect(checkSessionFormats({ type: 'session.updated', session: { type: 'realtime' } }, 'pcmu')).toMatch(/input format is missing/);
    const beta = { type: 'session.updated', session: { input_audio_format: 'g711_ulaw', output_audio_format: 'g711_ulaw' } };
    expect(checkSessionFormats(beta, 'pcmu')).toMatch(/beta field names/);
    expect(checkSessionFormats({ type: 'session.created', session: {} }, 'pcmu')).toMatch(/expected a session.updated/);
    expect(checkSessionFormats(null, 'pcmu')).toMatch(/expected a session.updated/);
  });
});

describe('realtimeURL', () => {
  it('maps https to wss and http to ws, with the model as query', () => {
    expect(realtimeURL()).toBe('wss://api.openai.com/v1/realtime?model=gpt-realtime');
    expect(realtimeURL('https://api.openai.com/v1/', 'gpt-realtime-mini')).toBe('wss://api.openai.com/v1/realtime?model=gpt-realtime-mini');
    expect(realtimeURL('http://127.0.0.1:9999/v1', 'm')).toBe('ws://127.0.0.1:9999/v1/realtime?model=m');
    expect(realtimeURL('https://proxy.example/openai/v1', 'a b')).toBe('wss://proxy.example/openai/v1/realtime?model=a+b');
    expect(() => realtimeURL('ftp://x/v1')).toThrow(/http/);
  });
});

describe('isAudioDeltaPrefix', () => {
  it('matches only a message whose first key is the delta type', () => {
    expect(isAudioDeltaPrefix(Buffer.from('{"type":"response.output_audio.delta","delta":"AAAA"}'))).toBe(true);
    expect(isAudioDeltaPrefix(Buffer.from('{"type":"response.output_audio.done","item_id":"x"}'))).toBe(false);
    expect(isAudioDeltaPrefix(Buffer.from('{"type":"response.output_audio.delta_x","delta":""}'))).toBe(false);
    expect(isAudioDeltaPrefix(Buffer.from('{"type":"response.output_audio_transcript.delta","delta":"hi"}'))).toBe(false);
    expect(isAudioDeltaPrefix(Buffer.from('{"delta":"AAAA","type":"response.output_audio.delta"}'))).toBe(false);
    expect(isAudioDeltaPrefix(Buffer.from('{"type":"response.output_audio.delta"'))).toBe(false);
  });
});
