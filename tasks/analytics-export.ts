import type { Task } from 'graphile-worker';
import type pg from 'pg';
import * as v from 'valibot';
import type { ServiceContext } from '../src/context';
import type { ExportOutcome } from '../src/observability/metrics';
import { compileAnalyticsSelect, parseExportDefinition } from '../src/exports/compile-query';
import { contentDisposition, exportObjectKey } from '../src/exports/naming';
import { deleteObject } from '../src/storage/objects';
import { copyToObject } from '../src/worker/copy-to-object';
import { CsvProgress } from '../src/worker/csv-progress';
import {
  claimExport,
  completeExport,
  failExport,
  releaseExport,
  requeueExport,
  type Claim,
  type ExportErrors,
} from '../src/worker/export-statements';
import { classifyFailure } from '../src/worker/failure';
import { startHeartbeat } from '../src/worker/heartbeat';
import { ExportStopped, type RunningExports, type StopReason } from '../src/worker/running-exports';

/**
 * `analytics_export`: runs one export, from claim to a final (or re-queued) state. The job is
 * only a wake-up call added by the database's trigger; the guarded claim decides whether there
 * is anything to do. The task does not throw for an export's own failure: the outcome is written
 * to the export, and graphile-worker's job is done either way.
 */

export const ANALYTICS_EXPORT_TASK = 'analytics_export';

const Payload = v.object({ export_id: v.pipe(v.string(), v.uuid()) });

/** What the task needs besides the service context: the worker's pools, name and running exports. */
export interface ExportWorker {
  context: ServiceContext;
  pool: pg.Pool;
  /** The COPY connections (copySessionOptions): one per running export. */
  copyPool: pg.Pool;
  workerId: string;
  running: RunningExports;
}

type Outcome = (kind: ExportOutcome['outcome'], fields: Record<string, unknown>, message: string) => void;

/** At most this long between two retries after storage faults, however many attempts. */
const MAX_RETRY_DELAY_MS = 3_600_000;

export function retryDelayMs(baseMs: number, attempt: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.max(0, attempt - 1));
}

export function createAnalyticsExportTask(worker: ExportWorker): Task {
  return async (payload, helpers) => {
    const { export_id: exportId } = v.parse(Payload, payload);
    await runExport(worker, exportId, helpers.abortSignal);
  };
}

export async function runExport(worker: ExportWorker, exportId: string, shutdownSignal?: AbortSignal): Promise<void> {
  const { context, pool } = worker;
  const { config } = context;
  const logger = context.logger.child({ export_id: exportId });

  const claim = await claimExport(pool, exportId, worker.workerId);
  if (!claim) {
    logger.debug('export not claimed: deleted, cancelled, already claimed or not due');
    return;
  }
  const started = Date.now();
  const progress = new CsvProgress();
  // One log line and one metrics observation per attempt, whatever its end.
  const outcome: Outcome = (kind, fields, message) => {
    const durationMs = Date.now() - started;
    const rows = typeof fields.rows === 'number' ? fields.rows : progress.rows;
    const bytes = typeof fields.bytes === 'number' ? fields.bytes : progress.bytes;
    context.metrics.recordExport({ outcome: kind, durationSeconds: durationMs / 1000, rows, bytes, queuedSeconds: claim.queuedMs / 1000 });
    logger.info(
      { outcome: kind, attempt: claim.attempt, max_attempts: claim.maxAttempts, duration_ms: durationMs, queued_ms: Math.round(claim.queuedMs), rows, bytes, ...fields },
      message,
    );
  };

  if (claim.cancelRequested) {
    await failExport(pool, claim, { code: 'cancelled', message: 'the export was cancelled before it ran' });
    outcome('cancelled', {}, 'export cancelled');
    return;
  }

  const stopper = new AbortController();
  const stop = (reason: StopReason) => {
    if (!stopper.signal.aborted) stopper.abort(new ExportStopped(reason));
  };
  const unregister = worker.running.add(exportId, stop);
  const onShutdown = () => stop('shutdown');
  shutdownSignal?.addEventListener('abort', onShutdown, { once: true });
  if (shutdownSignal?.aborted) stop('shutdown');
  const heartbeat = startHeartbeat({
    pool,
    claim,
    intervalMs: Math.min(1000, config.export.heartbeatTimeoutMs / 3),
    timeoutMs: config.export.heartbeatTimeoutMs,
    progress: () => ({ rows: progress.rows, bytes: progress.bytes }),
    stop,
    logger,
  });

  const objectKey = exportObjectKey(exportId, claim.attempt, claim.createdBy);
  try {
    const select = compileAnalyticsSelect(parseExportDefinition(claim.definition));
    const result = await copyToObject({
      pool: worker.copyPool,
      s3: context.s3,
      bucket: config.s3.bucket,
      key: objectKey,
      select,
      contentDisposition: contentDisposition(claim.name),
      partSizeBytes: config.export.partSizeBytes,
      queueSize: config.export.uploadQueueSize,
      signal: stopper.signal,
      progress,
      logger,
    });
    await heartbeat.stop();
    // Cancelled while the upload was completing: the user's wish stands, the object goes.
    const stopped = stopper.signal.aborted ? (stopper.signal.reason as ExportStopped) : undefined;
    if (stopped?.reason !== 'cancelled' && (await completeExport(pool, claim, { ...result, objectKey }))) {
      outcome('complete', { rows: result.rows, bytes: result.bytes }, 'export complete');
      return;
    }
    // Not completed: cancelled (the completion refuses an export with a cancel request, however
    // late it came), deleted, or taken over by a later attempt. This attempt's object is its own.
    const message = stopped?.reason === 'cancelled' ? stopped.message : 'the export was cancelled while its upload was completing';
    const errors = { code: 'cancelled', message };
    if (await failExport(pool, claim, errors)) outcome('cancelled', { errors }, 'export cancelled');
    else outcome('lost', {}, 'export given up: this attempt no longer holds it');
    await discardObject(worker, claim, objectKey);
  } catch (error) {
    await heartbeat.stop();
    await recordFailure(worker, claim, error, outcome);
  } finally {
    unregister();
    shutdownSignal?.removeEventListener('abort', onShutdown);
  }
}

/** The upload finished but the export will not own it: the object must not outlive the attempt. */
async function discardObject(worker: ExportWorker, claim: Claim, objectKey: string): Promise<void> {
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
async function recordFailure(worker: ExportWorker, claim: Claim, error: unknown, outcome: Outcome): Promise<void> {
  const { context, pool } = worker;
  if (error instanceof ExportStopped) {
    if (error.reason === 'cancelled') {
      const errors = { code: 'cancelled', message: error.message };
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
