import type pg from 'pg';
import type { Logger } from '../../logger';
import { requeueOrphanedExports } from '../../db/statements/export-attempts';
import { repeatEvery } from '../repeat';

/**
 * Every worker process gives orphaned exports a new job: every `intervalMs`, queued exports and
 * queued slices that have been due for `staleAfterMs` without a job able to run them (it was
 * deleted, ran out of attempts, or a worker that died before claiming still holds it) get a fresh
 * one, and so does a sliced export whose slices are all complete but whose finishing job is gone
 * (requeue_orphaned_exports in drizzle/0007_requeue_orphaned_exports.sql and 0018_slice_rescue.sql).
 */
export interface RequeueOrphanedExportsConfig {
  /** How long a due export may wait without a runnable job (EXPORT_HEARTBEAT_TIMEOUT_S). */
  staleAfterMs: number;
  intervalMs: number;
}

/** From the heartbeat timeout, as the rescuer of stale exports: three times per timeout, at most every half second. */
export function requeueOrphanedExportsConfig(heartbeatTimeoutMs: number): RequeueOrphanedExportsConfig {
  return { staleAfterMs: heartbeatTimeoutMs, intervalMs: Math.max(500, Math.floor(heartbeatTimeoutMs / 3)) };
}

export function startOrphanedExportRequeuer(options: RequeueOrphanedExportsConfig & { pool: pg.Pool; logger: Logger }): {
  stop(): Promise<void>;
} {
  const { logger } = options;
  return repeatEvery(options.intervalMs, async () => {
    try {
      const orphans = await requeueOrphanedExports(options.pool, options.staleAfterMs);
      for (const id of orphans) logger.warn({ export_id: id }, 'export (or a slice of it) had no job able to run it: job added again');
    } catch (error) {
      logger.warn({ err: error }, 'could not requeue orphaned exports');
    }
  });
}
