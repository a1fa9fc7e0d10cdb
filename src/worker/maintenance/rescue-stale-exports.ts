import type pg from 'pg';
import type { Logger } from '../../logger';
import { rescueStaleExports } from '../../db/statements/export-attempts';
import { repeatEvery } from '../repeat';

/**
 * Every worker process rescues exports whose worker died: every `intervalMs`, running exports
 * with a heartbeat older than `staleAfterMs` go back to queued, or to failed after their last
 * attempt (rescue_stale_exports in drizzle/0004_export_rescue.sql).
 */
export interface RescueStaleExportsConfig {
  /** A running export whose heartbeat is older than this is rescued (EXPORT_HEARTBEAT_TIMEOUT_S). */
  staleAfterMs: number;
  intervalMs: number;
}

/** From the heartbeat timeout: looked at three times per timeout, at most every half second. */
export function rescueStaleExportsConfig(heartbeatTimeoutMs: number): RescueStaleExportsConfig {
  return { staleAfterMs: heartbeatTimeoutMs, intervalMs: Math.max(500, Math.floor(heartbeatTimeoutMs / 3)) };
}

export function startStaleExportRescuer(options: RescueStaleExportsConfig & { pool: pg.Pool; logger: Logger }): { stop(): Promise<void> } {
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
