import pg from 'pg';
import type { Logger } from '../logger';
import type { RunningExports } from './running-exports';

export const CANCEL_CHANNEL = 'analytics_export_cancel';
const RECONNECT_DELAY_MS = 1000;

/**
 * One LISTEN connection per worker process: cancel_export() NOTIFYs the channel with the
 * export's id, and the process running that export stops it. A connection that drops is
 * reconnected; a NOTIFY sent meanwhile is missed, which the heartbeat's check of
 * cancel_requested_at makes up for.
 */
export async function startCancelListener(options: {
  connectionString: string;
  running: RunningExports;
  logger: Logger;
}): Promise<{ stop(): Promise<void> }> {
  const { logger } = options;
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async () => {
    const next = new pg.Client({ connectionString: options.connectionString, application_name: 'analytics-export-cancel-listener' });
    next.on('notification', (message) => {
      if (message.channel !== CANCEL_CHANNEL || !message.payload) return;
      if (options.running.stop(message.payload, 'cancelled')) {
        logger.info({ export_id: message.payload }, 'export cancel requested');
      }
    });
    next.on('error', (error) => {
      logger.warn({ err: error }, 'cancel listener connection failed');
      reconnectLater(next);
    });
    next.on('end', () => reconnectLater(next));
    await next.connect();
    await next.query(`LISTEN ${CANCEL_CHANNEL}`);
    client = next;
  };
  const reconnectLater = (failed: pg.Client) => {
    if (stopped || client !== failed) return;
    client = undefined;
    failed.end().catch(() => undefined);
    retry = setTimeout(reconnect, RECONNECT_DELAY_MS);
  };
  // Tried every second for as long as the database is away (a restart takes several).
  const reconnect = () => {
    if (stopped) return;
    connect().catch((error: unknown) => {
      logger.warn({ err: error }, 'cancel listener could not reconnect');
      if (!stopped) retry = setTimeout(reconnect, RECONNECT_DELAY_MS);
    });
  };

  await connect();
  return {
    async stop() {
      stopped = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
