import type { ServiceContext } from '../context';
import type pg from 'pg';
import {
  claimExport,
  completeExport,
  failExport,
  recordProgress,
  releaseExport,
  requeueExport,
  type Claim,
  type ExportErrors,
} from '../db/statements/export-attempts';
import { compileAnalyticsSelect, parseExportDefinition } from '../exports/compile-query';
import type { Logger } from '../logger';
import type { ExportOutcome } from '../observability/metrics';
import { exportManifest, MANIFEST_CONTENT_TYPE } from '../exports/manifest';
import { contentDisposition, exportAttemptFolder, exportFileKey, exportManifestKey } from '../exports/naming';
import { deleteObjects, putObject } from '../storage/objects';
import { copyToObject, type WrittenFile } from './copy-to-object';
import { exportEncoder } from './encoders';
import { awaitExportDatabase, ExportDatabaseUnavailable, isExportDatabaseFault } from './export-database';
import { ExportProgress } from './export-progress';
import { classifyFailure } from './failure';
import { startHeartbeat } from './heartbeat';
import { sliceIfLarge } from './slicing';
import { StorageError } from '../storage/errors';
import { ExportStopped, type StopReason } from './running-exports';
import type { WorkerResources } from './resources';

/**
 * One attempt at an export, from claim to a final (or re-queued) state, in three steps:
 *
 * 1. claim it (queued -> running), or learn there is nothing to do;
 * 2. run the copy: its SELECT compiled from the definition the claim read, COPY into the
 *    attempt's object, while the heartbeat writes progress and a cancel, a lost hold or a
 *    shutdown can stop it;
 * 3. settle the outcome: complete, or cancelled, retried, re-queued, failed, given up.
 *
 * An export's own failure is written to the export, not thrown.
 */

export type Outcome = (kind: ExportOutcome['outcome'], fields: Record<string, unknown>, message: string) => void;

/** At most this long between two retries after storage faults, however many attempts. */
const MAX_RETRY_DELAY_MS = 3_600_000;

/**
 * An export refused its tenant's turn comes back this much later. Short, so that a freed slot is
 * taken soon; long enough that a tenant's backlog is not re-examined on every poll.
 */
const FAIR_SHARE_RETRY_MS = 2000;

export function retryDelayMs(baseMs: number, attempt: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.max(0, attempt - 1));
}

export async function runExport(worker: WorkerResources, exportId: string, shutdownSignal?: AbortSignal): Promise<void> {
  const logger = worker.context.logger.child({ export_id: exportId });
  const claimed = await claimExport(worker.pool, exportId, worker.workerId, {
    maxRunningPerTenant: worker.context.config.export.maxRunningPerCustomer,
    retryAfterMs: FAIR_SHARE_RETRY_MS,
  });
  if (!claimed) {
    logger.debug('export not claimed: deleted, cancelled, already claimed or not due');
    return;
  }
  if ('deferred' in claimed) {
    logger.debug({ retry_in_ms: FAIR_SHARE_RETRY_MS }, 'export not started: its customer runs its share while others wait');
    return;
  }
  const claim = claimed.claimed;
  const progress = new ExportProgress();
  const outcome = attemptOutcome(worker.context, claim, progress, logger);
  if (claim.cancelRequested) {
    await failExport(worker.pool, claim, { code: 'cancelled', message: 'the export was cancelled before it ran' });
    outcome('cancelled', {}, 'export cancelled');
    return;
  }

  const control = watchAttempt(worker, exportId, (done) => recordProgress(worker.pool, claim, done), progress, logger, shutdownSignal);
  const folder = exportAttemptFolder(exportId, claim.attempt);
  try {
    const query = parseExportDefinition(claim.definition);
    const select = compileAnalyticsSelect(query);
    await awaitExportDatabaseCaughtUp(worker, control.signal);
    const slices = await readingExportDatabase(worker, sliceIfLarge(worker, claim, query));
    if (slices !== undefined) {
      await control.stopHeartbeat();
      logger.info({ slices, attempt: claim.attempt }, 'export divided into slices');
      return;
    }
    const result = await runCopy(worker, claim, select, folder, control.signal, progress, logger);
    await control.stopHeartbeat();
    await settleCopied(worker, claim, result, control.signal, outcome);
  } catch (error) {
    await control.stopHeartbeat();
    await recordFailure(worker.context, claim, attemptWrites(worker.pool, claim), error, outcome);
  } finally {
    control.release();
  }
}

/** The writes that settle an export attempt that did not complete. */
function attemptWrites(pool: pg.Pool, claim: Claim): AttemptWrites {
  return {
    fail: (errors) => failExport(pool, claim, errors),
    requeue: (delayMs, errors) => requeueExport(pool, claim, delayMs, errors),
    release: (errors) => releaseExport(pool, claim, errors),
  };
}

/** What an attempt's outcome reports of its claim. */
export interface AttemptFacts {
  attempt: number;
  maxAttempts: number;
  queuedMs: number;
}

/**
 * One log line per attempt, whatever its end, and one metrics observation: an export attempt's,
 * or a slice attempt's under the slice metrics (it is not counted as an export's).
 */
export function attemptOutcome(
  context: ServiceContext,
  claim: AttemptFacts,
  progress: ExportProgress,
  logger: Logger,
  attemptAt: 'export' | 'slice' = 'export',
): Outcome {
  const started = Date.now();
  return (kind, fields, message) => {
    const durationMs = Date.now() - started;
    const rows = typeof fields.rows === 'number' ? fields.rows : progress.rows;
    const bytes = typeof fields.bytes === 'number' ? fields.bytes : progress.bytes;
    const errorCode = (fields.errors as ExportErrors | undefined)?.code;
    const observed = { outcome: kind, durationSeconds: durationMs / 1000, rows, bytes, errorCode };
    if (attemptAt === 'slice') context.metrics.recordSlice(observed);
    else context.metrics.recordExport({ ...observed, queuedSeconds: claim.queuedMs / 1000 });
    logger.info(
      {
        outcome: kind,
        attempt: claim.attempt,
        max_attempts: claim.maxAttempts,
        duration_ms: durationMs,
        queued_ms: Math.round(claim.queuedMs),
        rows,
        bytes,
        ...fields,
      },
      message,
    );
  };
}

/**
 * While the attempt runs: registered with the running exports (a cancel NOTIFY or a lost hold
 * stops it), stopped by the shutdown signal, and kept alive by the heartbeat. `signal` aborts
 * with ExportStopped; release() undoes the registrations.
 */
export function watchAttempt(
  worker: WorkerResources,
  exportId: string,
  record: (progress: { rows: number; bytes: number }) => Promise<{ cancelRequested: boolean } | undefined>,
  progress: ExportProgress,
  logger: Logger,
  shutdownSignal?: AbortSignal,
) {
  const { config } = worker.context;
  const stopper = new AbortController();
  const stop = (reason: StopReason) => {
    if (!stopper.signal.aborted) stopper.abort(new ExportStopped(reason));
  };
  const unregister = worker.running.add(exportId, stop);
  const onShutdown = () => stop('shutdown');
  shutdownSignal?.addEventListener('abort', onShutdown, { once: true });
  if (shutdownSignal?.aborted) stop('shutdown');
  const heartbeat = startHeartbeat({
    exportId,
    record,
    intervalMs: Math.min(1000, config.export.heartbeatTimeoutMs / 3),
    timeoutMs: config.export.heartbeatTimeoutMs,
    progress: () => ({ rows: progress.rows, bytes: progress.bytes }),
    stop,
    logger,
  });
  return {
    signal: stopper.signal,
    stopHeartbeat: () => heartbeat.stop(),
    release: () => {
      unregister();
      shutdownSignal?.removeEventListener('abort', onShutdown);
    },
  };
}

/** What an attempt wrote: its files in row order, and the key `url` downloads (the file, or the manifest). */
interface CopiedExport {
  rows: number;
  bytes: number;
  files: WrittenFile[];
  objectKey: string;
}

/**
 * When exports read from a database of their own (EXPORT_DATABASE_URL), an attempt (of an export
 * or of a slice) waits until it has caught up with the primary before it reads.
 */
export async function awaitExportDatabaseCaughtUp(worker: WorkerResources, signal: AbortSignal): Promise<void> {
  const { config } = worker.context;
  if (config.export.readDatabaseUrl === undefined) return;
  await awaitExportDatabase({ primary: worker.pool, reads: worker.copyPool, maxLagMs: config.export.replicaMaxLagMs, signal });
}

/**
 * A read on the export database (the planner estimate, the COPY): when that is a database of its
 * own, its going away is a fault of its own (export-database.ts).
 */
export function readingExportDatabase<T>(worker: WorkerResources, read: Promise<T>): Promise<T> {
  if (worker.context.config.export.readDatabaseUrl === undefined) return read;
  return read.catch((error: unknown) => {
    throw isExportDatabaseFault(error) ? new ExportDatabaseUnavailable(error) : error;
  });
}

/**
 * The SELECT compiled from the definition the claim read, copied into the attempt's files, and
 * for several files their manifest. If the manifest cannot be written the files are removed and
 * the storage's error is the attempt's.
 */
async function runCopy(
  worker: WorkerResources,
  claim: Claim,
  select: string,
  folder: string,
  signal: AbortSignal,
  progress: ExportProgress,
  logger: Logger,
): Promise<CopiedExport> {
  const { context } = worker;
  const { bucket } = context.config.s3;
  const copied = await readingExportDatabase(
    worker,
    copyToObject({
      pool: worker.copyPool,
      s3: context.s3,
      bucket,
      fileKey: (fileNumber, extension) => exportFileKey(folder, claim.createdBy, fileNumber, extension),
      select,
      encoder: exportEncoder(claim),
      contentDisposition: (fileNumber, extension) => contentDisposition(claim.name, extension, fileNumber),
      partSizeBytes: context.config.export.partSizeBytes,
      maxFileBytes: context.config.export.maxFileBytes,
      queueSize: context.config.export.uploadQueueSize,
      signal,
      progress,
      logger,
    }),
  );
  if (copied.files.length === 1) return { ...copied, objectKey: copied.files[0]!.key };
  const objectKey = exportManifestKey(folder, claim.createdBy);
  try {
    await putObject(context.s3, bucket, objectKey, exportManifest(bucket, copied.files), {
      contentType: MANIFEST_CONTENT_TYPE,
      contentDisposition: contentDisposition(claim.name, 'manifest.json'),
    });
  } catch (error) {
    await discardObjects(
      worker,
      claim.exportId,
      copied.files.map((file) => file.key),
    );
    throw new StorageError(error);
  }
  return { ...copied, objectKey };
}

/** The files are written: the export completes, unless it was cancelled or this attempt lost it. */
async function settleCopied(
  worker: WorkerResources,
  claim: Claim,
  result: CopiedExport,
  signal: AbortSignal,
  outcome: Outcome,
): Promise<void> {
  // Cancelled while the upload was completing: the user's wish stands, the files go.
  const stopped = signal.aborted ? (signal.reason as ExportStopped) : undefined;
  if (stopped?.reason !== 'cancelled' && (await completeExport(worker.pool, claim, { objectKey: result.objectKey, files: result.files }))) {
    outcome('complete', { rows: result.rows, bytes: result.bytes, files: result.files.length }, 'export complete');
    return;
  }
  // Not completed: cancelled (the completion refuses an export with a cancel request, however
  // late it came), deleted, or taken over by a later attempt. This attempt's objects are its own.
  const message = stopped?.reason === 'cancelled' ? stopped.message : 'the export was cancelled while its upload was completing';
  const errors: ExportErrors = { code: 'cancelled', message };
  if (await failExport(worker.pool, claim, errors)) outcome('cancelled', { errors }, 'export cancelled');
  else outcome('lost', {}, 'export given up: this attempt no longer holds it');
  const keys = result.files.map((file) => file.key);
  await discardObjects(worker, claim.exportId, result.objectKey === keys[0] ? keys : [...keys, result.objectKey]);
}

/** The uploads finished but the export will not own them: the objects must not outlive the attempt. */
export async function discardObjects(worker: WorkerResources, exportId: string, keys: string[]): Promise<void> {
  const { context } = worker;
  const logger = context.logger.child({ export_id: exportId });
  const { failed } = await deleteObjects(context.s3, context.config.s3.bucket, keys);
  for (const { key, error } of failed)
    logger.warn({ err: error, object_key: key }, 'could not delete an object of an attempt that did not complete; the orphan sweep will');
  if (failed.length < keys.length)
    logger.info({ objects: keys.length - failed.length }, 'the attempt did not complete the export: its objects removed');
}

/** The writes that settle an attempt (of an export, or of a slice) that did not complete. */
export interface AttemptWrites {
  fail(errors: ExportErrors): Promise<boolean>;
  requeue(delayMs: number, errors: ExportErrors): Promise<boolean>;
  release(errors: ExportErrors): Promise<boolean>;
}

/** copyToObject has removed what the attempt wrote before it threw: only the row is left to settle. */
export async function recordFailure(
  context: ServiceContext,
  claim: AttemptFacts & { exportId: string },
  writes: AttemptWrites,
  error: unknown,
  outcome: Outcome,
): Promise<void> {
  if (error instanceof ExportStopped) {
    if (error.reason === 'cancelled') {
      const errors: ExportErrors = { code: 'cancelled', message: error.message };
      await writes.fail(errors);
      outcome('cancelled', { errors }, 'export cancelled');
    } else if (error.reason === 'shutdown') {
      // Not the export's fault: it runs again at once on another worker, and the attempt does not count.
      await writes.release({ code: 'shutdown', message: error.message });
      outcome('requeued', { reason: 'shutdown' }, 'export stopped by shutdown and re-queued');
    } else {
      outcome('lost', {}, 'export given up: this attempt no longer holds it');
    }
    return;
  }

  const failure = classifyFailure(error);
  const errors: ExportErrors = { ...failure.errors, attempt: claim.attempt };
  // Unexpected errors get their stack in the log; the export keeps only code and message.
  if (errors.code === 'internal') context.logger.error({ err: error, export_id: claim.exportId }, 'unexpected error in an export');
  if (failure.retry && claim.attempt < claim.maxAttempts) {
    const delayMs = retryDelayMs(context.config.export.retryDelayMs, claim.attempt);
    await writes.requeue(delayMs, errors);
    outcome('retry', { errors, retry_in_ms: delayMs }, 'export attempt failed, will retry');
  } else {
    await writes.fail(errors);
    outcome('failed', { errors }, 'export failed');
  }
}
