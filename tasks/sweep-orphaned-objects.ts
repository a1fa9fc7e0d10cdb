import type { Task } from 'graphile-worker';
import type { ServiceContext } from '../src/context';
import { EXPORT_PREFIX, parseExportObjectKey } from '../src/exports/naming';
import { deleteObjects, listObjectPages } from '../src/storage/objects';
import { ownedObjectKeys, runningAttempts } from '../src/db/statements/exports';

/**
 * The orphan sweep (crontab, hourly): nothing in the bucket outlives its export. It lists every
 * object under the export prefix (`anx_export_`) and deletes each one that
 *
 * - no complete export owns (its object_key), and
 * - is not the object of a running attempt (the export is running with the attempt number in
 *   the key; that attempt may be about to complete with it), and
 * - was last modified more than ORPHAN_GRACE_MS ago.
 *
 * Such an object can never become owned: only the attempt that wrote it may complete the export
 * with it, and that attempt no longer holds the export. The grace period is a margin on top, for
 * keys older than per-attempt keys (which name no attempt) and for clocks that disagree. What it
 * removes: files of deleted exports whose own cleanup failed or crashed, what failed, cancelled
 * and lost attempts left, and writes that landed after their attempt had given up.
 *
 * An object that cannot be deleted is logged and counted, and the run goes on with the others.
 */
export const SWEEP_ORPHANED_OBJECTS_TASK = 'sweep_orphaned_objects';
export const ORPHAN_GRACE_MS = 3600 * 1000;

export interface SweepResult {
  /** Objects under the export prefix that were looked at. */
  listed: number;
  deleted: number;
  failed: number;
}

export function sweepOrphanedObjectsTask(context: ServiceContext): Task {
  return async () => {
    await sweepOrphanedObjects(context, ORPHAN_GRACE_MS);
  };
}

/** What the sweep uses of the service context. */
export type SweepContext = Pick<ServiceContext, 'database' | 's3' | 'logger'> & { config: { s3: { bucket: string } } };

export async function sweepOrphanedObjects(context: SweepContext, graceMs: number): Promise<SweepResult> {
  const { database, s3, config, logger } = context;
  const { sql } = database;
  const bucket = config.s3.bucket;
  const result: SweepResult = { listed: 0, deleted: 0, failed: 0 };
  for await (const page of listObjectPages(s3, bucket, EXPORT_PREFIX)) {
    result.listed += page.length;
    const cutoff = Date.now() - graceMs;
    const old = page.filter((object) => object.lastModified === undefined || object.lastModified.getTime() < cutoff);
    if (old.length === 0) continue;
    const keys = old.map((object) => object.key);
    const parsed = keys.map((key) => parseExportObjectKey(key));
    const exportIds = [...new Set(parsed.flatMap((p) => (p ? [p.exportId] : [])))];
    // Read after the listing: an object listed here was already written by its attempt.
    const owned = new Set(await ownedObjectKeys(sql, keys));
    const runningAttempt = await runningAttempts(sql, exportIds);
    const orphans = keys.filter((key, i) => {
      if (owned.has(key)) return false;
      const p = parsed[i];
      // A running export's key that names no attempt (written before per-attempt keys) is left alone.
      return !(p && runningAttempt.has(p.exportId) && (p.attempt === undefined || p.attempt === runningAttempt.get(p.exportId)));
    });
    const { deleted, failed } = await deleteObjects(s3, bucket, orphans);
    result.deleted += deleted;
    result.failed += failed.length;
    for (const { key, error } of failed) logger.warn({ err: error, object_key: key }, 'orphan sweep: could not delete an object');
  }
  if (result.deleted > 0 || result.failed > 0) logger.info({ ...result }, 'orphan sweep: objects no export owns removed');
  return result;
}
