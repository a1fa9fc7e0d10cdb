import pg from 'pg';
import type { Logger } from '../logger';

const RECONNECT_DELAY_MS = 1000;

export interface ChannelListener {
  /** Whether the LISTEN is in place now (false while connecting or reconnecting). */
  listening(): boolean;
  stop(): Promise<void>;
}

/**
 * A connection of its own that LISTENs on one channel and hands each NOTIFY's payload to
 * `onNotification`. It connects in the background; a connection that drops (or cannot be made)
 * is tried again every second until stop(). `onListening` runs each time the LISTEN is in place,
 * first and after every reconnection: a NOTIFY sent while it was away is lost, so whoever relies
 * on them re-reads what they wait for then.
 */
export function listenToChannel(options: {
  connectionString: string;
  channel: string;
  applicationName: string;
  logger: Logger;
  onNotification(payload: string): void;
  onListening(): void;
}): ChannelListener {
  const { logger, channel } = options;
  let client: pg.Client | undefined;
  let listening = false;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async () => {
    const next = new pg.Client({ connectionString: options.connectionString, application_name: options.applicationName });
    client = next;
    next.on('notification', (message) => {
      if (message.channel === channel && message.payload) options.onNotification(message.payload);
    });
    next.on('error', (error) => {
      logger.warn({ err: error, channel }, 'listener connection failed');
      reconnectLater(next);
    });
    next.on('end', () => reconnectLater(next));
    try {
      await next.connect();
      // The channel is the code's own constant, never input.
      await next.query(`LISTEN ${channel}`);
    } catch (error) {
      logger.warn({ err: error, channel }, 'listener could not connect');
      reconnectLater(next);
      return;
    }
    if (stopped || client !== next) return;
    listening = true;
    options.onListening();
  };
  const reconnectLater = (failed: pg.Client) => {
    if (client !== failed) return;
    client = undefined;
    listening = false;
    failed.end().catch(() => undefined);
    if (!stopped) retry = setTimeout(() => void connect(), RECONNECT_DELAY_MS);
  };

  void connect();
  return {
    listening: () => listening,
    async stop() {
      stopped = true;
      listening = false;
      clearTimeout(retry);
      const last = client;
      client = undefined;
      await last?.end().catch(() => undefined);
    },
  };
}
