import pg from 'pg';
import type { Claim } from '../db/statements/export-attempts';
import { estimateRows, exportDeviceIds, sliceBoundaries, sliceExport } from '../db/statements/export-slices';
import {
  bucketsInRange,
  compileExportDevicesSelect,
  compileReadingsEstimateSelect,
  sliceAlignment,
  type ExportQuery,
} from '../exports/compile-query';
import { CopyQueryError } from './copy-to-object';
import type { WorkerResources } from './resources';

/** At most this many slices, however large the estimate: each is a job, a COPY and its files. */
export const MAX_SLICES = 64;

/**
 * Divides a large export into time slices, each run by its own job on any worker. An export is
 * sliced when the planner estimates it at more than EXPORT_SLICE_ROWS rows (estimateExportRows, on
 * the connections the COPY itself uses), into about estimate / EXPORT_SLICE_ROWS slices of equal
 * time, their boundaries aligned so that no row falls on both sides (sliceAlignment); day buckets
 * are not sliced. Returns how many slices it made, or undefined when the export runs whole.
 */
export async function sliceIfLarge(worker: WorkerResources, claim: Claim, query: ExportQuery): Promise<number | undefined> {
  const { sliceRows } = worker.context.config.export;
  const alignment = sliceAlignment(query.interval);
  if (sliceRows === 0 || alignment === undefined) return undefined;
  const estimate = await estimateExportRows(worker.copyPool, query).catch((error: unknown) => {
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

/**
 * How many rows the export will have, as the planner sees it: first the export's devices (its own
 * visibility rules, run), then EXPLAIN of its readings with those ids as literals, so that the
 * readings' statistics per device decide (EXPLAIN of the export's SELECT itself underestimated a
 * customer's 2,016,000 readings as 349,930: the visibility functions' selectivity is a default
 * guess). Buckets are at most devices x metrics x buckets in the range.
 */
export async function estimateExportRows(pool: pg.Pool, query: ExportQuery): Promise<number> {
  const deviceIds = await exportDeviceIds(pool, compileExportDevicesSelect(query));
  if (deviceIds.length === 0) return 0;
  const readings = await estimateRows(pool, compileReadingsEstimateSelect(query, deviceIds));
  const buckets = bucketsInRange(query);
  return buckets === undefined ? readings : Math.min(readings, deviceIds.length * query.metrics.length * buckets);
}
