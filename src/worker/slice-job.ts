import {
  claimSlice,
  completeSlice,
  failSlice,
  recordSliceProgress,
  releaseSlice,
  requeueSlice,
  type SliceClaim,
  type SliceEnd,
} from '../db/statements/export-slices';
import type { ExportErrors } from '../db/statements/export-attempts';
import { compileAnalyticsSelect, parseExportDefinition } from '../exports/compile-query';
import { contentDisposition, exportFileKey, exportSliceFolder } from '../exports/naming';
import { copyToObject } from './copy-to-object';
import { exportEncoder } from './encoders';
import {
  attemptOutcome,
  awaitExportDatabaseCaughtUp,
  discardObjects,
  readingExportDatabase,
  recordFailure,
  watchAttempt,
  type AttemptWrites,
} from './export-job';
import { ExportProgress } from './export-progress';
import type { WorkerResources } from './resources';
import type { ExportStopped } from './running-exports';
import { recordSlicedExportEnd } from './sliced-export-end';
import type { Logger } from '../logger';

/**
 * One attempt at one slice of a sliced export: claim the slice, COPY the export's SELECT over the
 * slice's time range into the slice's files, and settle the slice. It is an export attempt in
 * small: the same heartbeat, cancel and shutdown handling, the same faults retried (the slice
 * runs again, not the export). The export's completion or failure is the database's, when its
 * slices settle (drizzle/0014_export_files.sql); the slice whose end failed it counts that end.
 */
export async function runSlice(
  worker: WorkerResources,
  exportId: string,
  sliceNumber: number,
  shutdownSignal?: AbortSignal,
): Promise<void> {
  const logger = worker.context.logger.child({ export_id: exportId, slice: sliceNumber });
  const claim = await claimSlice(worker.pool, exportId, sliceNumber, worker.workerId);
  if (!claim) {
    logger.debug('slice not claimed: deleted, failed, already claimed or not due');
    return;
  }
  const progress = new ExportProgress();
  const outcome = attemptOutcome(worker.context, claim, progress, logger, 'slice');
  if (claim.cancelRequested) {
    sliceEnded(
      worker,
      logger,
      await failSlice(worker.pool, claim, { code: 'cancelled', message: 'the export was cancelled or failed before this slice ran' }),
    );
    outcome('cancelled', {}, 'slice cancelled');
    return;
  }
  const control = watchAttempt(worker, exportId, (done) => recordSliceProgress(worker.pool, claim, done), progress, logger, shutdownSignal);
  const folder = exportSliceFolder(exportId, claim.exportAttempt, sliceNumber, claim.attempt);
  try {
    const query = parseExportDefinition(claim.definition);
    const { context } = worker;
    await awaitExportDatabaseCaughtUp(worker, control.signal);
    // The export's own encoder: a sliced Parquet export is Parquet files, slice after slice.
    const copied = await readingExportDatabase(
      worker,
      copyToObject({
        pool: worker.copyPool,
        s3: context.s3,
        bucket: context.config.s3.bucket,
        fileKey: (fileNumber, extension) => exportFileKey(folder, claim.createdBy, fileNumber, extension),
        select: compileAnalyticsSelect({ ...query, start: claim.rangeStart, end: claim.rangeEnd }),
        encoder: exportEncoder(claim),
        contentDisposition: (fileNumber, extension) => contentDisposition(claim.name, extension, fileNumber),
        partSizeBytes: context.config.export.partSizeBytes,
        maxFileBytes: context.config.export.maxFileBytes,
        queueSize: context.config.export.uploadQueueSize,
        signal: control.signal,
        progress,
        logger,
      }),
    );
    await control.stopHeartbeat();
    const stopped = control.signal.aborted ? (control.signal.reason as ExportStopped) : undefined;
    if (stopped?.reason !== 'cancelled' && sliceEnded(worker, logger, await completeSlice(worker.pool, claim, copied.files))) {
      outcome('complete', { rows: copied.rows, bytes: copied.bytes, files: copied.files.length }, 'slice complete');
      return;
    }
    const errors: ExportErrors = { code: 'cancelled', message: 'the export was cancelled or failed while this slice completed' };
    if (sliceEnded(worker, logger, await failSlice(worker.pool, claim, errors))) outcome('cancelled', { errors }, 'slice cancelled');
    else outcome('lost', {}, 'slice given up: this attempt no longer holds it');
    await discardObjects(
      worker,
      exportId,
      copied.files.map((file) => file.key),
    );
  } catch (error) {
    await control.stopHeartbeat();
    await recordFailure(worker.context, claim, sliceWrites(worker, claim, logger), error, outcome);
  } finally {
    control.release();
  }
}

/**
 * Whether this attempt still held the slice it ended. When that end failed the export (cancelled,
 * or a slice failed for good, and this slice was the last to run), the export's end is counted
 * here: one slice's end does, whichever it was.
 */
function sliceEnded(worker: WorkerResources, logger: Logger, end: SliceEnd | undefined): boolean {
  if (end?.exportFailed) recordSlicedExportEnd(worker.context, logger, end.exportFailed);
  return end !== undefined;
}

function sliceWrites(worker: WorkerResources, claim: SliceClaim, logger: Logger): AttemptWrites {
  return {
    fail: async (errors) => sliceEnded(worker, logger, await failSlice(worker.pool, claim, { ...errors, slice: claim.sliceNumber })),
    requeue: (delayMs, errors) => requeueSlice(worker.pool, claim, delayMs, { ...errors, slice: claim.sliceNumber }),
    release: (errors) => releaseSlice(worker.pool, claim, errors),
  };
}
