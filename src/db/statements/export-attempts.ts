import type pg from 'pg';
import type { ExportCompression, ExportErrorCode, ExportFormat } from '../schema';
import { EXPORT_DEFINITION_SQL } from './export-definition';

/**
 * Every statement an export attempt runs on analytics_exports (and the rescues of attempts that
 * were lost), one small function each. An attempt is
 * identified by (id, worker_id, attempts): each claim increments attempts (the status trigger
 * does), so a late write from an attempt that was rescued and run again matches no row.
 */

export interface Claim {
  exportId: string;
  workerId: string;
  attempt: number;
  maxAttempts: number;
  createdBy: string;
  name: string;
  cancelRequested: boolean;
  /** How long the export waited from being due (run_at) to this claim. */
  queuedMs: number;
  /** Its query's definition, read by the claim itself (EXPORT_DEFINITION_SQL): parseExportDefinition checks it. */
  definition: unknown;
  /** The file it writes. */
  format: ExportFormat;
  compression: ExportCompression;
  formulaGuard: boolean;
}

export interface ExportErrors {
  code: ExportErrorCode;
  message: string;
  [detail: string]: unknown;
}

/**
 * The statements of every attempt are named: pg prepares each once per connection, so Postgres
 * parses and plans them once rather than for every export (a one-row export is mostly its
 * statements: npm run bench).
 */
export const namedStatements = (prefix: string) => (name: string, text: string, values: unknown[]) => ({
  name: `${prefix}-${name}`,
  text,
  values,
});
const prepared = namedStatements('analytics-export');

/** What an export's claim and a slice's claim both return, as the row names it. */
export interface ClaimedRow {
  attempts: number;
  max_attempts: number;
  created_by: string;
  name: string;
  cancel_requested: boolean;
  queued_ms: number;
  definition: string | null;
  format: ExportFormat;
  compression: ExportCompression;
  formula_guard: boolean;
}

/** The fields of a claim that an export's and a slice's share, from their claim's row. */
export function claimedFields(row: ClaimedRow) {
  return {
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    createdBy: row.created_by,
    name: row.name,
    cancelRequested: row.cancel_requested,
    queuedMs: Math.max(0, row.queued_ms),
    definition: row.definition,
    format: row.format,
    compression: row.compression,
    formulaGuard: row.formula_guard,
  };
}

const HELD_BY_THIS_ATTEMPT = `id = $1 AND status = 'running' AND worker_id = $2 AND attempts = $3`;
const attemptParams = (claim: Claim) => [claim.exportId, claim.workerId, claim.attempt];

/** How the claim treats tenants (drizzle/0015_fair_claims.sql). */
export interface FairShare {
  /** Exports one tenant may run at once while another tenant's export is due; 0: no limit. */
  maxRunningPerTenant: number;
  /** When the export is refused its turn, its job comes back this much later. */
  retryAfterMs: number;
}

/**
 * What a claim found: the export, now running on this attempt; `deferred`, its tenant's turn is
 * not yet (the job is already moved later, the export stays queued and keeps its attempts); or
 * nothing to do (deleted, cancelled, already claimed or not due).
 */
export type ClaimResult = { claimed: Claim } | { deferred: true } | undefined;

/**
 * queued -> running, if the export is still queued, due, and its tenant's turn
 * (analytics_export_take_turn). The export's query definition comes back with it: a one-row
 * export is mostly round trips.
 */
export async function claimExport(pool: pg.Pool, exportId: string, workerId: string, fairShare: FairShare): Promise<ClaimResult> {
  const { rows } = await pool.query<{ turn: boolean } & ({ attempts: null } | ClaimedRow)>(
    prepared(
      'claim',
      // The turn is asked once, of a due queued export only (MATERIALIZED: it may move the job);
      // the UPDATE keeps its own guard, so a concurrent claim still wins or loses cleanly.
      `WITH turn AS MATERIALIZED (
         SELECT analytics_export_take_turn(id, $3, make_interval(secs => $4::double precision / 1000)) AS go
           FROM analytics_exports WHERE id = $1 AND status = 'queued' AND run_at <= now()
       ), claimed AS (
         UPDATE analytics_exports AS e
            SET status = 'running', worker_id = $2
           FROM turn
          WHERE turn.go AND e.id = $1 AND e.status = 'queued' AND e.run_at <= now()
          RETURNING attempts, max_attempts, created_by::text, name, cancel_requested_at IS NOT NULL AS cancel_requested,
                    (extract(epoch FROM now() - run_at) * 1000)::float8 AS queued_ms, ${EXPORT_DEFINITION_SQL} AS definition,
                    format::text, compression::text, formula_guard
       )
       SELECT turn.go AS turn, claimed.* FROM turn LEFT JOIN claimed ON true`,
      [exportId, workerId, fairShare.maxRunningPerTenant, fairShare.retryAfterMs],
    ),
  );
  const row = rows[0];
  if (!row) return undefined;
  if (!row.turn) return { deferred: true };
  if (row.attempts === null) return undefined;
  return {
    claimed: { exportId, workerId, ...claimedFields(row) },
  };
}

/**
 * The heartbeat: progress so far and proof of life. Returns undefined when this attempt no
 * longer holds the export, else whether a cancel was requested.
 */
export async function recordProgress(
  pool: pg.Pool,
  claim: Claim,
  progress: { rows: number; bytes: number },
): Promise<{ cancelRequested: boolean } | undefined> {
  const { rows } = await pool.query<{ cancel_requested: boolean }>(
    prepared(
      'progress',
      `UPDATE analytics_exports
          SET heartbeat_at = now(), rows_written = $4, bytes_written = $5
        WHERE ${HELD_BY_THIS_ATTEMPT}
        RETURNING cancel_requested_at IS NOT NULL AS cancel_requested`,
      [...attemptParams(claim), progress.rows, progress.bytes],
    ),
  );
  return rows[0] ? { cancelRequested: rows[0].cancel_requested } : undefined;
}

/** One file of a complete export, in the export's row order. */
export interface ExportFile {
  key: string;
  rows: number;
  bytes: number;
}

/**
 * running -> complete, with the export's files (analytics_export_files, numbered in order) saved
 * by the same statement; the export's number_of_rows and total_bytes are their sums. `objectKey`
 * is what `url` downloads: the one file, or the manifest of several. False when this attempt no
 * longer holds the export or when a cancel was requested meanwhile (a cancel wins over a
 * completion: the caller fails it).
 */
export async function completeExport(pool: pg.Pool, claim: Claim, result: { objectKey: string; files: ExportFile[] }): Promise<boolean> {
  const { rows } = await pool.query<{ completed: boolean }>(
    prepared(
      'complete',
      `WITH files AS (
         SELECT f.file_number::int, f.key, f.rows, f.bytes
           FROM ROWS FROM (jsonb_to_recordset($5::jsonb) AS (key text, rows bigint, bytes bigint))
                WITH ORDINALITY AS f(key, rows, bytes, file_number)),
       sums AS (SELECT sum(rows) AS rows, sum(bytes) AS bytes FROM files),
       completed AS (
         UPDATE analytics_exports
            SET status = 'complete', object_key = $4,
                number_of_rows = sums.rows, total_bytes = sums.bytes, rows_written = sums.rows, bytes_written = sums.bytes
           FROM sums
          WHERE ${HELD_BY_THIS_ATTEMPT} AND cancel_requested_at IS NULL
          RETURNING id),
       saved AS (
         INSERT INTO analytics_export_files (export_id, file_number, object_key, number_of_rows, total_bytes)
         SELECT completed.id, files.file_number, files.key, files.rows, files.bytes FROM completed, files)
       SELECT EXISTS (SELECT FROM completed) AS completed`,
      [...attemptParams(claim), result.objectKey, JSON.stringify(result.files)],
    ),
  );
  return rows[0]!.completed;
}

/** running -> failed; false when this attempt no longer holds the export. */
export async function failExport(pool: pg.Pool, claim: Claim, errors: ExportErrors): Promise<boolean> {
  const { rowCount } = await pool.query(
    prepared('fail', `UPDATE analytics_exports SET status = 'failed', errors = $4 WHERE ${HELD_BY_THIS_ATTEMPT}`, [
      ...attemptParams(claim),
      JSON.stringify(errors),
    ]),
  );
  return rowCount === 1;
}

/**
 * running -> queued, to run again after `delayMs` (the enqueue trigger adds the job); the fault is
 * kept in last_error. False when this attempt no longer holds the export.
 */
export async function requeueExport(pool: pg.Pool, claim: Claim, delayMs: number, lastError: ExportErrors): Promise<boolean> {
  const { rowCount } = await pool.query(
    prepared(
      'requeue',
      `UPDATE analytics_exports
          SET status = 'queued', run_at = now() + make_interval(secs => $4::double precision / 1000), last_error = $5
        WHERE ${HELD_BY_THIS_ATTEMPT}`,
      [...attemptParams(claim), delayMs, JSON.stringify(lastError)],
    ),
  );
  return rowCount === 1;
}

/**
 * running -> queued at once, handing the attempt back (attempts - 1): stopped by a shutdown, the
 * export did not fail, so the stop does not count against max_attempts. False when this attempt
 * no longer holds the export.
 */
export async function releaseExport(pool: pg.Pool, claim: Claim, lastError: ExportErrors): Promise<boolean> {
  const { rowCount } = await pool.query(
    prepared(
      'release',
      `UPDATE analytics_exports SET status = 'queued', attempts = attempts - 1, run_at = now(), last_error = $4
        WHERE ${HELD_BY_THIS_ATTEMPT}`,
      [...attemptParams(claim), JSON.stringify(lastError)],
    ),
  );
  return rowCount === 1;
}

/** Gives queued exports that lost their job a new one (drizzle/0007_requeue_orphaned_exports.sql). */
export async function requeueOrphanedExports(pool: pg.Pool, staleAfterMs: number): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT id::text FROM requeue_orphaned_exports(make_interval(secs => $1::double precision / 1000)) AS id`,
    [staleAfterMs],
  );
  return rows.map((row) => row.id);
}

/** Rescues running exports whose heartbeat is older than `staleAfterMs` (drizzle/0004_export_rescue.sql). */
export async function rescueStaleExports(pool: pg.Pool, staleAfterMs: number): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT id::text FROM rescue_stale_exports(make_interval(secs => $1::double precision / 1000)) AS id`,
    [staleAfterMs],
  );
  return rows.map((row) => row.id);
}
