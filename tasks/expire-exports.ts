import type { Task } from 'graphile-worker';
import type { ServiceContext } from '../src/context';
import { listExpiredExports } from '../src/db/statements/exports';
import { deleteExport } from '../src/exports/delete-export';

/**
 * Retention (crontab, hourly): exports in a final state older than EXPORT_RETENTION_DAYS are
 * deleted with their files, the same way as DELETE /analytics/exports/{id}/ (deleteExport): the
 * row first, then every object under the export's prefix, so what a failed export left goes too.
 * A file that cannot be deleted is logged and left to the orphan sweep; it never stops the run.
 */
export const EXPIRE_EXPORTS_TASK = 'expire_exports';
const BATCH = 500;

export function expireExportsTask(context: ServiceContext): Task {
  const { database, s3, config, logger } = context;
  const files = { s3, bucket: config.s3.bucket, logger };
  return async () => {
    let deleted = 0;
    for (;;) {
      const expired = await listExpiredExports(database.sql, config.export.retentionDays, BATCH);
      for (const id of expired) {
        if (await deleteExport(database.sql, files, id)) deleted++;
      }
      if (expired.length < BATCH) break;
    }
    if (deleted > 0) logger.info({ deleted, retentionDays: config.export.retentionDays }, 'expired exports deleted');
  };
}
