import { completedSliceFiles, completeSlicedExport } from '../db/statements/export-slices';
import { exportManifest, MANIFEST_CONTENT_TYPE } from '../exports/manifest';
import { contentDisposition, exportAttemptFolder, exportManifestKey } from '../exports/naming';
import { deleteObject, putObject } from '../storage/objects';
import type { WorkerResources } from './resources';
import { recordSlicedExportEnd } from './sliced-export-end';

/**
 * The end of a sliced export, once the database found every slice complete and added this job:
 * write the manifest of the slices' files (in slice order) and complete the export with it
 * (complete_sliced_export: the files and the sums, in SQL), counting its end. A storage fault throws, and
 * graphile-worker runs the job again; nothing to do (already completed, cancelled, deleted) is
 * not a fault.
 */
export async function finishSlicedExport(worker: WorkerResources, exportId: string): Promise<void> {
  const { context } = worker;
  const logger = context.logger.child({ export_id: exportId });
  const done = await completedSliceFiles(worker.pool, exportId);
  if (!done) {
    logger.debug('sliced export not finished: not running, or a slice is not complete');
    return;
  }
  const { bucket } = context.config.s3;
  const manifestKey = exportManifestKey(exportAttemptFolder(exportId, done.attempt), done.createdBy);
  await putObject(context.s3, bucket, manifestKey, exportManifest(bucket, done.files), {
    contentType: MANIFEST_CONTENT_TYPE,
    contentDisposition: contentDisposition(done.name, 'manifest.json'),
  });
  const completed = await completeSlicedExport(worker.pool, exportId, manifestKey);
  if (completed) {
    const rows = done.files.reduce((sum, file) => sum + file.rows, 0);
    const bytes = done.files.reduce((sum, file) => sum + file.bytes, 0);
    recordSlicedExportEnd(context, logger.child({ files: done.files.length }), { ...completed, rows, bytes });
    return;
  }
  logger.info('sliced export not completed: cancelled or deleted meanwhile; its manifest removed');
  await deleteObject(context.s3, bucket, manifestKey).catch((error: unknown) =>
    logger.warn({ err: error, object_key: manifestKey }, 'could not delete the manifest of an export that did not complete'),
  );
}
