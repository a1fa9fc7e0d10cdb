import { pino, type Logger } from 'pino';
import type { Config } from './config';

/** Structured JSON logs on stdout, one object a line. */
export function createLogger(level: Config['logLevel']): Logger {
  return pino({ level, base: { service: 'analytics-export' }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
