import type { Task } from 'graphile-worker';
import type { ServiceContext } from '../src/context';
import { deleteObject } from '../src/storage/objects';

/**
 * Retention (crontab, hourly): exports in a final state older than EXPORT_RETENTION_DAYS are
 * deleted with their files. The file goes first, then the row, so a failure leaves the row to be
 * tried again next hour rather than a file nobody knows about.
 */
export const EXPIRE_EXPORTS_TASK = 'expire_exports';
const BATCH = 500;

export function expireExportsTask(context: ServiceContext): Task {
  const { database, s3, config, logger } = context;
  return async () => {
    let deleted = 0;
    for (;;) {
      const expired = await database.sql<{ id: string; object_key: string | null }[]>`
        SELECT id, object_key FROM analytics_exports
         WHERE status IN ('complete', 'failed')
           AND created < now() - make_interval(days => ${config.export.retentionDays})
         ORDER BY created
         LIMIT ${BATCH}`;
      for (const row of expired) {
        if (row.object_key) await deleteObject(s3, config.s3.bucket, row.object_key);
        await database.sql`DELETE FROM analytics_exports WHERE id = ${row.id}`;
        deleted++;
      }
      if (expired.length < BATCH) break;
    }
    if (deleted > 0) logger.info({ deleted, retentionDays: config.export.retentionDays }, 'expired exports deleted');
  };
}
