import type { ServiceContext } from '../context';
import {
  claimExport,
  completeExport,
  failExport,
  releaseExport,
  requeueExport,
  type Claim,
  type ExportErrors,
} from '../db/statements/export-attempts';
import { compileAnalyticsSelect, parseExportDefinition } from '../exports/compile-query';
import type { Logger } from '../logger';
import type { ExportOutcome } from '../observability/metrics';
import { fileExtension } from '../exports/formats';
import { contentDisposition, exportObjectKey } from '../exports/naming';
import { deleteObject } from '../storage/objects';
import { copyToObject } from './copy-to-object';
import { exportEncoder } from './encoders';
import { awaitExportDatabase, ExportDatabaseUnavailable, isExportDatabaseFault } from './export-database';
import { ExportProgress } from './export-progress';
import { classifyFailure } from './failure';
import { startHeartbeat } from './heartbeat';
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

type Outcome = (kind: ExportOutcome['outcome'], fields: Record<string, unknown>, message: string) => void;

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

  const control = watchAttempt(worker, claim, progress, logger, shutdownSignal);
  const objectKey = exportObjectKey(exportId, claim.attempt, claim.createdBy, fileExtension(claim));
  try {
    const result = await runCopy(worker, claim, objectKey, control.signal, progress, logger);
    await control.stopHeartbeat();
    await settleCopied(worker, claim, objectKey, result, control.signal, outcome);
  } catch (error) {
    await control.stopHeartbeat();
    await recordFailure(worker, claim, error, outcome);
  } finally {
    control.release();
  }
}

/** One log line and one metrics observation per attempt, whatever its end. */
function attemptOutcome(context: ServiceContext, claim: Claim, progress: ExportProgress, logger: Logger): Outcome {
  const started = Date.now();
  return (kind, fields, message) => {
    const durationMs = Date.now() - started;
    const rows = typeof fields.rows === 'number' ? fields.rows : progress.rows;
    const bytes = typeof fields.bytes === 'number' ? fields.bytes : progress.bytes;
    const errorCode = (fields.errors as ExportErrors | undefined)?.code;
    context.metrics.recordExport({
      outcome: kind,
      durationSeconds: durationMs / 1000,
      rows,
      bytes,
      queuedSeconds: claim.queuedMs / 1000,
      errorCode,
    });
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
function watchAttempt(worker: WorkerResources, claim: Claim, progress: ExportProgress, logger: Logger, shutdownSignal?: AbortSignal) {
  const { config } = worker.context;
  const stopper = new AbortController();
  const stop = (reason: StopReason) => {
    if (!stopper.signal.aborted) stopper.abort(new ExportStopped(reason));
  };
  const unregister = worker.running.add(claim.exportId, stop);
  const onShutdown = () => stop('shutdown');
  shutdownSignal?.addEventListener('abort', onShutdown, { once: true });
  if (shutdownSignal?.aborted) stop('shutdown');
  const heartbeat = startHeartbeat({
    pool: worker.pool,
    claim,
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

/**
 * The SELECT compiled from the definition the claim read, copied into the attempt's object. When
 * exports read from a database of their own (EXPORT_DATABASE_URL), it must first have caught up
 * with the primary, and its going away is a fault of its own (export-database.ts).
 */
async function runCopy(
  worker: WorkerResources,
  claim: Claim,
  objectKey: string,
  signal: AbortSignal,
  progress: ExportProgress,
  logger: Logger,
) {
  const { context } = worker;
  const select = compileAnalyticsSelect(parseExportDefinition(claim.definition));
  const readsElsewhere = context.config.export.readDatabaseUrl !== undefined;
  if (readsElsewhere) {
    await awaitExportDatabase({ primary: worker.pool, reads: worker.copyPool, maxLagMs: context.config.export.replicaMaxLagMs, signal });
  }
  const copied = copyToObject({
    pool: worker.copyPool,
    s3: context.s3,
    bucket: context.config.s3.bucket,
    key: objectKey,
    select,
    encoder: exportEncoder(claim),
    contentDisposition: (extension) => contentDisposition(claim.name, extension),
    partSizeBytes: context.config.export.partSizeBytes,
    queueSize: context.config.export.uploadQueueSize,
    signal,
    progress,
    logger,
  });
  return readsElsewhere
    ? copied.catch((error: unknown) => {
        throw isExportDatabaseFault(error) ? new ExportDatabaseUnavailable(error) : error;
      })
    : copied;
}

/** The object is written: the export completes, unless it was cancelled or this attempt lost it. */
async function settleCopied(
  worker: WorkerResources,
  claim: Claim,
  objectKey: string,
  result: { rows: number; bytes: number },
  signal: AbortSignal,
  outcome: Outcome,
): Promise<void> {
  // Cancelled while the upload was completing: the user's wish stands, the object goes.
  const stopped = signal.aborted ? (signal.reason as ExportStopped) : undefined;
  if (stopped?.reason !== 'cancelled' && (await completeExport(worker.pool, claim, { ...result, objectKey }))) {
    outcome('complete', { rows: result.rows, bytes: result.bytes }, 'export complete');
    return;
  }
  // Not completed: cancelled (the completion refuses an export with a cancel request, however
  // late it came), deleted, or taken over by a later attempt. This attempt's object is its own.
  const message = stopped?.reason === 'cancelled' ? stopped.message : 'the export was cancelled while its upload was completing';
  const errors: ExportErrors = { code: 'cancelled', message };
  if (await failExport(worker.pool, claim, errors)) outcome('cancelled', { errors }, 'export cancelled');
  else outcome('lost', {}, 'export given up: this attempt no longer holds it');
  await discardObject(worker, claim, objectKey);
}

/** The upload finished but the export will not own it: the object must not outlive the attempt. */
async function discardObject(worker: WorkerResources, claim: Claim, objectKey: string): Promise<void> {
  const { context } = worker;
  const logger = context.logger.child({ export_id: claim.exportId, object_key: objectKey });
  try {
    await deleteObject(context.s3, context.config.s3.bucket, objectKey);
    logger.info('the attempt did not complete the export: its object removed');
  } catch (error) {
    logger.warn({ err: error }, 'could not delete the object of an attempt that did not complete; the orphan sweep will');
  }
}

/** copyToObject has removed what the attempt wrote before it threw: only the row is left to settle. */
async function recordFailure(worker: WorkerResources, claim: Claim, error: unknown, outcome: Outcome): Promise<void> {
  const { context, pool } = worker;
  if (error instanceof ExportStopped) {
    if (error.reason === 'cancelled') {
      const errors: ExportErrors = { code: 'cancelled', message: error.message };
      await failExport(pool, claim, errors);
      outcome('cancelled', { errors }, 'export cancelled');
    } else if (error.reason === 'shutdown') {
      // Not the export's fault: it runs again at once on another worker, and the attempt does not count.
      await releaseExport(pool, claim, { code: 'shutdown', message: error.message });
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
    await requeueExport(pool, claim, delayMs, errors);
    outcome('retry', { errors, retry_in_ms: delayMs }, 'export attempt failed, will retry');
  } else {
    await failExport(pool, claim, errors);
    outcome('failed', { errors }, 'export failed');
  }
}
