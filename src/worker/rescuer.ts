import type pg from 'pg';
import type { Logger } from '../logger';
import { requeueOrphanedExports, rescueStaleExports } from '../db/statements/export-attempts';
import { repeatEvery } from './repeat';

/**
 * Every worker process rescues exports whose worker died: every `intervalMs`, running exports
 * with a heartbeat older than `staleAfterMs` go back to queued, or to failed after their last
 * attempt (rescue_stale_exports in drizzle/0004_export_rescue.sql); and queued exports that have
 * been due that long without a job able to run them get a new one (requeue_orphaned_exports).
 */
export function startRescuer(options: { pool: pg.Pool; staleAfterMs: number; intervalMs: number; logger: Logger }): {
  stop(): Promise<void>;
} {
  const { logger } = options;
  return repeatEvery(options.intervalMs, async () => {
    try {
      const ids = await rescueStaleExports(options.pool, options.staleAfterMs);
      for (const id of ids) logger.warn({ export_id: id }, 'rescued an export whose worker stopped sending heartbeats');
      const orphans = await requeueOrphanedExports(options.pool, options.staleAfterMs);
      for (const id of orphans) logger.warn({ export_id: id }, 'queued export had no job able to run it: job added again');
    } catch (error) {
      logger.warn({ err: error }, 'could not rescue stale exports');
    }
  });
}
