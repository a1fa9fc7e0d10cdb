import type { Queryable } from '../db/client';
import { cancelExportRow, findVisibleExport, type ExportRow } from '../db/statements/exports';

/** Only a queued or running export can be cancelled. */
export class ExportAlreadyFinished extends Error {
  override name = 'ExportAlreadyFinished';
}

/** The export as it is after a cancel (undefined if it went meanwhile), and whether its worker is still stopping it. */
export interface CancelOutcome {
  row: ExportRow | undefined;
  stopping: boolean;
}

/**
 * Cancels an export the caller sees (POST /analytics/exports/{id}/cancel/). Cancelling is
 * cancel_export() (drizzle/0001): a queued export fails at once, a running one is asked to stop
 * (its worker fails it within a second). Returns the export as it is after the call (undefined
 * if it went meanwhile) and whether its worker is still stopping it.
 */
export async function cancelExport(sql: Queryable, callerId: string, row: Pick<ExportRow, 'id' | 'status'>): Promise<CancelOutcome> {
  if (row.status === 'complete' || row.status === 'failed') {
    throw new ExportAlreadyFinished(`The export is already ${row.status}; only a queued or running export can be cancelled.`);
  }
  const status = await cancelExportRow(sql, row.id);
  return { row: await findVisibleExport(sql, callerId, row.id), stopping: status === 'running' };
}
