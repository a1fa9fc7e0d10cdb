import { failedExportSliceObjectKeys } from '../db/statements/export-slices';
import { deleteObjects } from '../storage/objects';
import type { WorkerResources } from './resources';

/**
 * When a sliced export fails (a slice failed, or it was cancelled), the database adds this job
 * (drizzle/0018_slice_rescue.sql): the files its complete slices wrote are deleted now, not at the
 * next hourly orphan sweep. A file that cannot be deleted makes the job throw, so graphile-worker
 * tries again later; the orphan sweep remains the last resort.
 */
export async function discardFailedSliceFiles(worker: WorkerResources, exportId: string): Promise<void> {
  const { context } = worker;
  const logger = context.logger.child({ export_id: exportId });
  const keys = await failedExportSliceObjectKeys(worker.pool, exportId);
  if (keys.length === 0) return;
  const { deleted, failed } = await deleteObjects(context.s3, context.config.s3.bucket, keys);
  if (deleted > 0) logger.info({ objects: deleted }, 'the sliced export failed: the files of its complete slices removed');
  if (failed.length > 0) {
    for (const { key, error } of failed) logger.warn({ err: error, object_key: key }, 'could not delete a file of a failed sliced export');
    throw new Error(`${failed.length} of ${keys.length} files of failed sliced export ${exportId} could not be deleted`);
  }
}
