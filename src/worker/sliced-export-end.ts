import type { ServiceContext } from '../context';
import type { SlicedExportEnd } from '../db/statements/export-slices';
import type { Logger } from '../logger';

/**
 * A sliced export's end, counted once among the export attempts as an unsliced export's last
 * attempt is, by the job that ended it: the finishing job when it completes, the slice attempt
 * whose end failed it (the database says which) when it fails or was cancelled. The attempt that
 * sliced it counts nothing; its slices' attempts count under the slice metrics.
 */
export function recordSlicedExportEnd(context: ServiceContext, logger: Logger, end: SlicedExportEnd): void {
  const code = end.errors?.code;
  const outcome = code === undefined ? 'complete' : code === 'cancelled' ? 'cancelled' : 'failed';
  context.metrics.recordExport({
    outcome,
    durationSeconds: end.durationSeconds,
    queuedSeconds: end.queuedSeconds,
    rows: end.rows,
    bytes: end.bytes,
    errorCode: code,
    sliced: true,
  });
  logger.info(
    {
      outcome,
      duration_ms: Math.round(end.durationSeconds * 1000),
      queued_ms: Math.round(end.queuedSeconds * 1000),
      rows: end.rows,
      bytes: end.bytes,
      ...(end.errors ? { errors: end.errors } : {}),
    },
    `sliced export ${outcome}`,
  );
}
