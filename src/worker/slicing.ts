import pg from 'pg';
import type { Claim } from '../db/statements/export-attempts';
import { estimateRows, sliceBoundaries, sliceExport } from '../db/statements/export-slices';
import { sliceAlignment, type ExportQuery } from '../exports/compile-query';
import { CopyQueryError } from './copy-to-object';
import type { WorkerResources } from './resources';

/** At most this many slices, however large the estimate: each is a job, a COPY and its files. */
export const MAX_SLICES = 64;

/**
 * Divides a large export into time slices, each run by its own job on any worker. An export is
 * sliced when the planner estimates its SELECT at more than EXPORT_SLICE_ROWS rows (EXPLAIN, on
 * the connections the COPY itself uses), into about estimate / EXPORT_SLICE_ROWS slices of equal
 * time, their boundaries aligned so that no row falls on both sides (sliceAlignment); day buckets
 * are not sliced. Returns how many slices it made, or undefined when the export runs whole.
 */
export async function sliceIfLarge(worker: WorkerResources, claim: Claim, query: ExportQuery, select: string): Promise<number | undefined> {
  const { sliceRows } = worker.context.config.export;
  const alignment = sliceAlignment(query.interval);
  if (sliceRows === 0 || alignment === undefined) return undefined;
  const estimate = await estimateRows(worker.copyPool, select).catch((error: unknown) => {
    // The export's own query failed to plan (a statement timeout behind a lock, say): a fault of
    // its query, as the COPY's would be.
    throw error instanceof pg.DatabaseError ? new CopyQueryError(error) : error;
  });
  worker.context.logger.debug({ export_id: claim.exportId, estimate, slice_rows: sliceRows }, 'planner estimate of the export');
  if (estimate <= sliceRows) return undefined;
  const slices = Math.min(MAX_SLICES, Math.ceil(estimate / sliceRows));
  const boundaries = await sliceBoundaries(worker.pool, query, slices, alignment);
  if (boundaries.length === 0) return undefined;
  // Not sliced (cancelled, or no longer this attempt's): the whole export runs and finds out.
  return (await sliceExport(worker.pool, claim, boundaries)) ? boundaries.length + 1 : undefined;
}
