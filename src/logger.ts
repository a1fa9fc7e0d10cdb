import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import type { Config } from './config';

/**
 * Logs on stdout, one line per event. JSON (one object a line, for log collectors) unless stdout
 * is a terminal or LOG_FORMAT=pretty: then pino-pretty's readable line (UTC time, level, message,
 * fields as JSON; an error's stack on the lines below). LOG_FORMAT=json forces JSON on a terminal
 * too. pino-pretty runs as a stream in this process, not as a transport worker thread, which the
 * esbuild bundle could not load. `stdout` is for tests that stand in a terminal.
 */
export function createLogger(
  level: Config['logLevel'],
  format?: Config['logFormat'],
  stdout: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
): Logger {
  const options = { level, base: { service: 'analytics-export' }, timestamp: pino.stdTimeFunctions.isoTime };
  const pretty = format === 'pretty' || (format === undefined && stdout.isTTY === true);
  // On the real stdout, pino's own writer on file descriptor 1 (faster than the stream).
  if (!pretty) return stdout === process.stdout ? pino(options) : pino(options, stdout);
  return pino(
    options,
    PinoPretty({
      destination: stdout,
      // Colours for a terminal only: a file or a pipe would get escape codes.
      colorize: stdout.isTTY === true,
      singleLine: true,
      translateTime: 'UTC:yyyy-mm-dd"T"HH:MM:ss.l"Z"',
      ignore: 'pid,hostname,service',
      sync: true,
    }),
  );
}

export type { Logger };
