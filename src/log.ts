// Structured JSON logs (pino): one line per event, callSid/streamSid bound per call.
import pino, { type Logger } from 'pino';

export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'voicebridge' } }, destination);
}

export type { Logger };
