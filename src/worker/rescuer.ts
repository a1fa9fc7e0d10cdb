import type pg from 'pg';
import type { Logger } from '../logger';
import { rescueStaleExports } from './export-statements';
import { repeatEvery } from './repeat';

/**
 * Every worker process rescues exports whose worker died: every `intervalMs`, running exports
 * with a heartbeat older than `staleAfterMs` go back to queued, or to failed after their last
 * attempt (rescue_stale_exports in drizzle/0004_export_rescue.sql).
 */
export function startRescuer(options: { pool: pg.Pool; staleAfterMs: number; intervalMs: number; logger: Logger }): {
  stop(): Promise<void>;
} {
  const { logger } = options;
  return repeatEvery(options.intervalMs, async () => {
    try {
      const ids = await rescueStaleExports(options.pool, options.staleAfterMs);
      for (const id of ids) logger.warn({ export_id: id }, 'rescued an export whose worker stopped sending heartbeats');
    } catch (error) {
      logger.warn({ err: error }, 'could not rescue stale exports');
    }
  });
}
