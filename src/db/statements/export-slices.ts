import type pg from 'pg';
import { type Claim, type ClaimedRow, claimedFields, type ExportErrors, type ExportFile, namedStatements } from './export-attempts';
import type { ExportCompression, ExportFormat } from '../schema';
import { EXPORT_DEFINITION_SQL } from './export-definition';

/**
 * The statements of sliced exports (drizzle/0014_export_files.sql): the planner's estimate that
 * decides slicing, the fan-out, and every statement a slice attempt runs on its row of
 * analytics_export_slices, one small function each. A slice attempt is identified by
 * (export_id, slice_number, worker_id, attempts), as an export attempt is by (id, worker_id,
 * attempts): a late write from a rescued attempt matches no row. The fan-in is the database's
 * (settle_sliced_export, complete_sliced_export).
 */

export interface SliceClaim {
  exportId: string;
  sliceNumber: number;
  slices: number;
  workerId: string;
  attempt: number;
  maxAttempts: number;
  /** The export's attempt that sliced it: the slice's files live under its folder. */
  exportAttempt: number;
  createdBy: string;
  name: string;
  cancelRequested: boolean;
  queuedMs: number;
  /** The export's definition (EXPORT_DEFINITION_SQL), run over [rangeStart, rangeEnd) only. */
  definition: unknown;
  rangeStart: string;
  rangeEnd: string;
  /** The export's file: each slice writes files of the export's own format. */
  format: ExportFormat;
  compression: ExportCompression;
  formulaGuard: boolean;
}

const prepared = namedStatements('analytics-export-slice');

const heldByThisAttempt = (alias: string) =>
  `${alias}.export_id = $1 AND ${alias}.slice_number = $2 AND ${alias}.status = 'running' AND ${alias}.worker_id = $3 AND ${alias}.attempts = $4`;
const attemptParams = (claim: SliceClaim) => [claim.exportId, claim.sliceNumber, claim.workerId, claim.attempt];
/** As Postgres writes a timestamptz in JSON: what parseExportDefinition accepts. */
const jsonTimestamp = (column: string) => `to_json(${column}) #>> '{}'`;

/** The ids an export's compiled device SELECT gives (compileExportDevicesSelect). */
export async function exportDeviceIds(pool: pg.Pool, devicesSelect: string): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(devicesSelect);
  return rows.map((row) => row.id);
}

/** The planner's estimate of the rows a SELECT returns (EXPLAIN, nothing run). */
export async function estimateRows(pool: pg.Pool, select: string): Promise<number> {
  const { rows } = await pool.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(`EXPLAIN (FORMAT JSON) ${select}`);
  return rows[0]!['QUERY PLAN'][0]!.Plan['Plan Rows'];
}

/**
 * Where `slices` time slices of [start, end) meet: the instants start + i x (end - start) / slices,
 * each moved back onto a multiple of `alignment` from 2000-01-01 UTC (the export's bucket width,
 * so that no bucket is cut; a microsecond for raw readings), ascending, strictly inside the range,
 * without repeats.
 */
export async function sliceBoundaries(
  pool: pg.Pool,
  range: { start: string; end: string },
  slices: number,
  alignment: string,
): Promise<string[]> {
  const { rows } = await pool.query<{ boundary: string }>(
    `SELECT DISTINCT ${jsonTimestamp('b')} AS boundary, b
       FROM (SELECT date_bin($4::interval, $1::timestamptz + ($2::timestamptz - $1::timestamptz) * (i::float8 / $3),
                             timestamptz '2000-01-01 00:00:00+00') AS b
               FROM generate_series(1, $3::int - 1) AS i) AS edges
      WHERE b > $1::timestamptz AND b < $2::timestamptz
      ORDER BY b`,
    [range.start, range.end, slices, alignment],
  );
  return rows.map((row) => row.boundary);
}

/** The fan-out (slice_analytics_export): false when this attempt no longer holds the export or it was cancelled. */
export async function sliceExport(pool: pg.Pool, claim: Claim, boundaries: string[]): Promise<boolean> {
  const { rows } = await pool.query<{ sliced: boolean }>(`SELECT slice_analytics_export($1, $2, $3, $4::timestamptz[]) AS sliced`, [
    claim.exportId,
    claim.workerId,
    claim.attempt,
    boundaries,
  ]);
  return rows[0]!.sliced;
}

/** queued -> running, if the slice is still queued and due; with what it runs. */
export async function claimSlice(pool: pg.Pool, exportId: string, sliceNumber: number, workerId: string): Promise<SliceClaim | undefined> {
  const { rows } = await pool.query<
    ClaimedRow & {
      slices: number;
      export_attempt: number;
      range_start: string;
      range_end: string;
    }
  >(
    prepared(
      'claim',
      `UPDATE analytics_export_slices AS s
          SET status = 'running', worker_id = $3
         FROM analytics_exports AS e
        WHERE s.export_id = $1 AND s.slice_number = $2 AND s.status = 'queued' AND s.run_at <= now() AND e.id = s.export_id
        RETURNING s.attempts, s.max_attempts, e.slices, e.attempts AS export_attempt, e.created_by::text, e.name,
                  e.cancel_requested_at IS NOT NULL OR e.status <> 'running' AS cancel_requested,
                  (extract(epoch FROM now() - s.run_at) * 1000)::float8 AS queued_ms, ${EXPORT_DEFINITION_SQL} AS definition,
                  ${jsonTimestamp('s.range_start')} AS range_start, ${jsonTimestamp('s.range_end')} AS range_end,
                  e.format::text, e.compression::text, e.formula_guard`,
      [exportId, sliceNumber, workerId],
    ),
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    exportId,
    sliceNumber,
    slices: row.slices,
    workerId,
    ...claimedFields(row),
    exportAttempt: row.export_attempt,
    rangeStart: row.range_start,
    rangeEnd: row.range_end,
  };
}

/**
 * The slice's heartbeat. Undefined when this attempt no longer holds the slice; else whether it
 * should stop as cancelled: the export was cancelled, failed, or another slice failed.
 */
export async function recordSliceProgress(
  pool: pg.Pool,
  claim: SliceClaim,
  progress: { rows: number; bytes: number },
): Promise<{ cancelRequested: boolean } | undefined> {
  const { rows } = await pool.query<{ cancel_requested: boolean }>(
    prepared(
      'progress',
      `UPDATE analytics_export_slices AS s
          SET heartbeat_at = now(), rows_written = $5, bytes_written = $6
         FROM analytics_exports AS e
        WHERE ${heldByThisAttempt('s')}
          AND e.id = s.export_id
        RETURNING e.cancel_requested_at IS NOT NULL OR e.status <> 'running'
               OR EXISTS (SELECT FROM analytics_export_slices f
                           WHERE f.export_id = s.export_id AND f.status = 'failed') AS cancel_requested`,
      [...attemptParams(claim), progress.rows, progress.bytes],
    ),
  );
  return rows[0] ? { cancelRequested: rows[0].cancel_requested } : undefined;
}

/**
 * How a sliced export ended, counted as an unsliced export's attempt is: from the claim that
 * sliced it to its end, from its due date to that claim, its rows and bytes, and a failed one's
 * errors.
 */
export interface SlicedExportEnd {
  durationSeconds: number;
  queuedSeconds: number;
  rows: number;
  bytes: number;
  errors?: ExportErrors;
}

/**
 * A slice attempt's end as written: undefined when this attempt no longer held the slice; else
 * the export's end when this slice's end failed the export (the last slice to end once the
 * export was cancelled or another slice failed for good: drizzle/0020_sliced_export_outcome.sql).
 */
export interface SliceEnd {
  exportFailed: SlicedExportEnd | undefined;
}

interface SliceEndRow {
  ended: boolean;
  export_errors: ExportErrors | null;
  export_duration_s: number | null;
  export_queued_s: number | null;
  export_rows: string | null;
  export_bytes: string | null;
}

function sliceEnd(row: SliceEndRow): SliceEnd | undefined {
  if (!row.ended) return undefined;
  if (row.export_errors === null) return { exportFailed: undefined };
  return {
    exportFailed: {
      durationSeconds: row.export_duration_s!,
      queuedSeconds: row.export_queued_s!,
      rows: Number(row.export_rows),
      bytes: Number(row.export_bytes),
      errors: row.export_errors,
    },
  };
}

/** running -> complete with the slice's files and their sums; the database's fan-in follows. */
export async function completeSlice(pool: pg.Pool, claim: SliceClaim, files: ExportFile[]): Promise<SliceEnd | undefined> {
  const { rows } = await pool.query<SliceEndRow>(
    prepared('complete', `SELECT * FROM complete_analytics_export_slice($1, $2, $3, $4, $5::jsonb)`, [
      ...attemptParams(claim),
      JSON.stringify(files),
    ]),
  );
  return sliceEnd(rows[0]!);
}

/** running -> failed; the export fails with it once no other slice runs. */
export async function failSlice(pool: pg.Pool, claim: SliceClaim, errors: ExportErrors): Promise<SliceEnd | undefined> {
  const { rows } = await pool.query<SliceEndRow>(
    prepared('fail', `SELECT * FROM fail_analytics_export_slice($1, $2, $3, $4, $5::jsonb)`, [
      ...attemptParams(claim),
      JSON.stringify(errors),
    ]),
  );
  return sliceEnd(rows[0]!);
}

/** running -> queued after `delayMs`, the fault in last_error: the slice runs again, not the export. */
export async function requeueSlice(pool: pg.Pool, claim: SliceClaim, delayMs: number, lastError: ExportErrors): Promise<boolean> {
  const { rowCount } = await pool.query(
    prepared(
      'requeue',
      `UPDATE analytics_export_slices AS s
          SET status = 'queued', run_at = now() + make_interval(secs => $5::double precision / 1000), last_error = $6
        WHERE ${heldByThisAttempt('s')}`,
      [...attemptParams(claim), delayMs, JSON.stringify(lastError)],
    ),
  );
  return rowCount === 1;
}

/** running -> queued at once, handing the attempt back: stopped by a shutdown, the slice did not fail. */
export async function releaseSlice(pool: pg.Pool, claim: SliceClaim, lastError: ExportErrors): Promise<boolean> {
  const { rowCount } = await pool.query(
    prepared(
      'release',
      `UPDATE analytics_export_slices AS s SET status = 'queued', attempts = attempts - 1, run_at = now(), last_error = $5
        WHERE ${heldByThisAttempt('s')}`,
      [...attemptParams(claim), JSON.stringify(lastError)],
    ),
  );
  return rowCount === 1;
}

/** The files of every slice of a running sliced export whose slices are all complete, in order; undefined otherwise. */
export async function completedSliceFiles(
  pool: pg.Pool,
  exportId: string,
): Promise<{ createdBy: string; name: string; attempt: number; files: ExportFile[] } | undefined> {
  const { rows } = await pool.query<{ created_by: string; name: string; attempts: number; files: ExportFile[] }>(
    `SELECT e.created_by::text, e.name, e.attempts,
            (SELECT jsonb_agg(f.file ORDER BY s.slice_number, f.n)
               FROM analytics_export_slices s CROSS JOIN LATERAL jsonb_array_elements(s.files) WITH ORDINALITY AS f(file, n)
              WHERE s.export_id = e.id) AS files
       FROM analytics_exports e
      WHERE e.id = $1 AND e.status = 'running' AND e.slices IS NOT NULL
        AND e.slices = (SELECT count(*) FROM analytics_export_slices s WHERE s.export_id = e.id AND s.status = 'complete')`,
    [exportId],
  );
  const row = rows[0];
  return row ? { createdBy: row.created_by, name: row.name, attempt: row.attempts, files: row.files } : undefined;
}

/**
 * complete_sliced_export: the export completes with its slices' files and their sums; its end
 * (without rows and bytes, which are its slices'), or undefined if it cannot. Its duration ends at
 * now(), the transaction's time, which the completion writes as `finished`.
 */
export async function completeSlicedExport(
  pool: pg.Pool,
  exportId: string,
  manifestKey: string,
): Promise<Omit<SlicedExportEnd, 'rows' | 'bytes'> | undefined> {
  const { rows } = await pool.query<{ completed: boolean; duration_s: number; queued_s: number }>(
    `SELECT complete_sliced_export(e.id, $2) AS completed, extract(epoch FROM now() - e.started)::float8 AS duration_s,
            extract(epoch FROM e.started - e.run_at)::float8 AS queued_s
       FROM analytics_exports e WHERE e.id = $1`,
    [exportId, manifestKey],
  );
  const row = rows[0];
  return row?.completed ? { durationSeconds: row.duration_s, queuedSeconds: row.queued_s } : undefined;
}

/**
 * The objects of the complete slices of a failed sliced export: the export failed, so no complete
 * export will ever own them. None while the export is not failed (or is gone).
 */
export async function failedExportSliceObjectKeys(pool: pg.Pool, exportId: string): Promise<string[]> {
  const { rows } = await pool.query<{ key: string }>(
    `SELECT f.file ->> 'key' AS key
       FROM analytics_exports e
       JOIN analytics_export_slices s ON s.export_id = e.id AND s.status = 'complete'
      CROSS JOIN LATERAL jsonb_array_elements(s.files) AS f(file)
      WHERE e.id = $1 AND e.status = 'failed'
      ORDER BY s.slice_number`,
    [exportId],
  );
  return rows.map((row) => row.key);
}
