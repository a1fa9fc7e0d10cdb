import type { Queryable } from '../client';
import { type KeyOwner, keyOwner } from './api-keys';
import type { ExportCompression, ExportFormat, ExportStatus } from '../schema';
import { escapeLike, isoTimestamp, type CommonRow } from './fragments';

/**
 * The statements on analytics_exports outside an attempt (the worker's are export-attempts.ts),
 * one statement per function. Visibility is always the database's user_sees_scopes(), the same
 * rule the export worker applies.
 */

export type { ExportStatus };

/** An export as the API shows it. */
export interface ExportRow extends CommonRow {
  query_id: string;
  status: ExportStatus;
  errors: unknown;
  number_of_rows: string | number | null;
  total_bytes: string | number | null;
  tags: string[];
  customer_scopes: string[];
  partner_scopes: string[];
  object_key: string | null;
  attempts: number;
  started: string | null;
  finished: string | null;
  heartbeat_at: string | null;
  rows_written: string | number | null;
  bytes_written: string | number | null;
  format: ExportFormat;
  compression: ExportCompression;
  formula_guard: boolean;
  notify_url: string | null;
}

/** A new export's columns. */
export interface NewExport {
  createdBy: string;
  name: string;
  notes: string;
  queryId: string;
  tags: string[];
  customerScopes: string[];
  partnerScopes: string[];
  maxAttempts: number;
  /** The file it writes; the database's defaults (csv, none, false) when absent. */
  format?: ExportFormat | undefined;
  compression?: ExportCompression | undefined;
  formulaGuard?: boolean | undefined;
  /** Idempotency-Key header of the creating request, and a hash of its body. */
  idempotencyKey?: string | undefined;
  requestHash?: string | undefined;
  /** Where to POST the signed notification of the final state (checked by createExport). */
  notifyUrl?: string | undefined;
}

/** A progress column of the export, its slices' sum while a sliced export runs (drizzle/0018_slice_rescue.sql). */
const progressOf = (column: 'rows_written' | 'bytes_written' | 'heartbeat_at') =>
  `CASE WHEN e.status = 'running' AND e.slices IS NOT NULL THEN (sliced_export_progress(e.id)).${column} ELSE e.${column} END`;

const columns = (sql: Queryable) => sql`
  e.id, ${isoTimestamp(sql, 'e.created')} AS created, ${isoTimestamp(sql, 'e.modified')} AS modified,
  e.created_by, e.name, e.notes, e.query_id, e.status, e.errors, e.number_of_rows, e.total_bytes, e.tags,
  e.customer_scopes, e.partner_scopes, e.object_key, e.attempts,
  ${isoTimestamp(sql, 'e.started')} AS started, ${isoTimestamp(sql, 'e.finished')} AS finished,
  ${isoTimestamp(sql, progressOf('heartbeat_at'))} AS heartbeat_at, ${sql.unsafe(progressOf('rows_written'))} AS rows_written,
  ${sql.unsafe(progressOf('bytes_written'))} AS bytes_written,
  e.format, e.compression, e.formula_guard, e.notify_url`;

/** The value, or the column's own default (the database holds the defaults). */
const orDefault = (sql: Queryable, value: string | boolean | undefined) => (value === undefined ? sql`DEFAULT` : sql`${value}`);

/**
 * Creating an export is one INSERT: the row is born queued and the database's trigger adds its
 * graphile-worker job in the same transaction (drizzle/0001_export_state_machine.sql), so an
 * export and its job commit together or not at all. The row is read back by the creating
 * statement itself: a worker may claim the export the moment it commits, and the answer to POST
 * is the export as created (queued).
 */
export async function insertExport(sql: Queryable, input: NewExport): Promise<ExportRow> {
  const [row] = await sql<ExportRow[]>`
    WITH e AS (
      INSERT INTO analytics_exports
        (created_by, name, notes, query_id, tags, customer_scopes, partner_scopes, max_attempts, idempotency_key, request_hash,
         format, compression, formula_guard, notify_url)
      VALUES (${input.createdBy}, ${input.name}, ${input.notes}, ${input.queryId}, ${input.tags}::text[],
              ${input.customerScopes}::uuid[], ${input.partnerScopes}::uuid[], ${input.maxAttempts},
              ${input.idempotencyKey ?? null}, ${input.requestHash ?? null},
              ${orDefault(sql, input.format)}, ${orDefault(sql, input.compression)}, ${orDefault(sql, input.formulaGuard)},
              ${input.notifyUrl ?? null})
      RETURNING *)
    SELECT ${columns(sql)} FROM e`;
  return row!;
}

export async function findVisibleExport(sql: Queryable, callerId: string, id: string): Promise<ExportRow | undefined> {
  const [row] = await sql<ExportRow[]>`
    SELECT ${columns(sql)} FROM analytics_exports e
     WHERE e.id = ${id} AND user_sees_scopes(${callerId}, e.customer_scopes, e.partner_scopes)`;
  return row;
}

/** An export `viewer` may see, with its files (in row order; none unless it is complete). */
const visibleExportWithFiles = (sql: Queryable, viewer: string | ReturnType<Queryable['unsafe']>, id: string | null) => sql`
  SELECT ${columns(sql)},
         coalesce((SELECT json_agg(json_build_object('object_key', f.object_key, 'number_of_rows', f.number_of_rows::text,
                                                     'total_bytes', f.total_bytes::text) ORDER BY f.file_number)
                     FROM analytics_export_files f WHERE f.export_id = e.id), '[]') AS files
    FROM analytics_exports e
   WHERE e.id = ${id} AND user_sees_scopes(${viewer}, e.customer_scopes, e.partner_scopes)`;

export type ExportWithFiles = ExportRow & { files: ExportFileRow[] };

/**
 * An export the caller may see with its files, in one round trip: what GET of one export reads
 * again while it waits (?wait=N).
 */
export async function findVisibleExportWithFiles(sql: Queryable, callerId: string, id: string): Promise<ExportWithFiles | undefined> {
  const [row] = await sql<ExportWithFiles[]>`${visibleExportWithFiles(sql, callerId, id)}`;
  return row;
}

/**
 * The owner of an API key (by its hash) and, if they may see it, the export `id` with its files:
 * GET of one export, the request clients poll, authenticates and reads in one statement. No row:
 * the key is unknown or revoked. An `id` of null finds no export (a path id that is no uuid).
 */
export async function findExportForKey(
  sql: Queryable,
  keyHash: string,
  id: string | null,
): Promise<{ owner: KeyOwner; found: ExportWithFiles | undefined } | undefined> {
  const [row] = await sql<(ExportWithFiles & { owner: KeyOwner })[]>`
    WITH ${keyOwner(sql, keyHash)}
    SELECT to_json(caller) AS owner, found.*
      FROM caller LEFT JOIN LATERAL (${visibleExportWithFiles(sql, sql`caller.id`, id)}) found ON true`;
  if (!row) return undefined;
  const { owner, ...found } = row;
  return { owner, found: found.id === null ? undefined : found };
}

/** An export whoever may see it (the webhook task describes it to its creator). */
export async function findExport(sql: Queryable, id: string): Promise<ExportRow | undefined> {
  const [row] = await sql<ExportRow[]>`SELECT ${columns(sql)} FROM analytics_exports e WHERE e.id = ${id}`;
  return row;
}

export interface ExportFilters {
  statuses?: string[] | undefined;
  tags?: string[] | undefined;
  nameContains?: string | undefined;
  queryId?: string | undefined;
}

/** Newest first, ties broken by id so that pages never overlap; limit + 1 rows tell if more exist. */
export async function listVisibleExports(
  sql: Queryable,
  callerId: string,
  filters: ExportFilters,
  page: { limit: number; offset: number },
): Promise<ExportRow[]> {
  return sql<ExportRow[]>`
    SELECT ${columns(sql)} FROM analytics_exports e
     WHERE user_sees_scopes(${callerId}, e.customer_scopes, e.partner_scopes)
       ${filters.statuses ? sql`AND e.status = ANY (${filters.statuses}::export_status[])` : sql``}
       ${filters.tags ? sql`AND e.tags @> ${filters.tags}::text[]` : sql``}
       ${filters.nameContains ? sql`AND e.name ILIKE ${`%${escapeLike(filters.nameContains)}%`}` : sql``}
       ${filters.queryId ? sql`AND e.query_id = ${filters.queryId}` : sql``}
     ORDER BY e.created DESC, e.id DESC
     LIMIT ${page.limit + 1} OFFSET ${page.offset}`;
}

/** An export made earlier by this user with this Idempotency-Key, within the last 24 hours. */
export async function findByIdempotencyKey(
  sql: Queryable,
  callerId: string,
  key: string,
): Promise<{ id: string; request_hash: string | null } | undefined> {
  const [row] = await sql<{ id: string; request_hash: string | null }[]>`
    SELECT id, request_hash FROM analytics_exports
     WHERE created_by = ${callerId} AND idempotency_key = ${key} AND created > now() - interval '24 hours'`;
  return row;
}

/** Keys are kept 24 hours: an older export lets go of its key so that the key can be used again. */
export async function releaseExpiredIdempotencyKey(sql: Queryable, callerId: string, key: string): Promise<void> {
  await sql`
    UPDATE analytics_exports SET idempotency_key = NULL, request_hash = NULL
     WHERE created_by = ${callerId} AND idempotency_key = ${key} AND created <= now() - interval '24 hours'`;
}

/**
 * cancel_export() (drizzle/0001): a queued export fails at once, a running one is asked to stop
 * (its worker fails it within a second), a finished one is left as it is. The status after the
 * call; null when there is no such export.
 */
export async function cancelExportRow(sql: Queryable, id: string): Promise<ExportStatus | null> {
  const [row] = await sql<{ status: ExportStatus | null }[]>`SELECT cancel_export(${id}) AS status`;
  return row!.status;
}

/** retry_export() (drizzle/0006): a new export with a failed one's definition; its id. */
export async function retryExport(sql: Queryable, id: string): Promise<string> {
  const [row] = await sql<{ id: string }[]>`SELECT retry_export(${id}) AS id`;
  return row!.id;
}

/** Deletes the row; false when there was no such export. */
export async function deleteExportRow(sql: Queryable, id: string): Promise<boolean> {
  const deleted = await sql`DELETE FROM analytics_exports WHERE id = ${id} RETURNING id`;
  return deleted.length > 0;
}

/** Exports in a final state created more than `retentionDays` ago, oldest first. */
export async function listExpiredExports(sql: Queryable, retentionDays: number, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    SELECT id FROM analytics_exports
     WHERE status IN ('complete', 'failed')
       AND created < now() - make_interval(days => ${retentionDays})
     ORDER BY created
     LIMIT ${limit}`;
  return rows.map((row) => row.id);
}

/** The newest exports from the analytics_export_jobs view (docs/operations.md); intervals in seconds, counts as numbers. */
export async function listExportJobs(sql: Queryable, filter: { status?: string | undefined; limit: number }) {
  const rows = await sql`
    SELECT id, status, attempts, max_attempts, last_error, error_code, worker_id, ${isoTimestamp(sql, 'held_since')} AS held_since,
           extract(epoch FROM heartbeat_age)::float8 AS heartbeat_age_seconds,
           rows_written::float8 AS rows_written, bytes_written::float8 AS bytes_written,
           ${isoTimestamp(sql, 'run_at')} AS run_at, ${isoTimestamp(sql, 'created')} AS created,
           ${isoTimestamp(sql, 'started')} AS started, ${isoTimestamp(sql, 'finished')} AS finished,
           extract(epoch FROM duration)::float8 AS duration_seconds,
           query_id, created_by, name, ${isoTimestamp(sql, 'cancel_requested_at')} AS cancel_requested_at, retry_of
      FROM analytics_export_jobs
     WHERE ${filter.status === undefined ? sql`true` : sql`status = ${filter.status}`}
     ORDER BY created DESC, id DESC
     LIMIT ${filter.limit}`;
  return [...rows];
}

/** How many exports there are in each status (every status named, zeros included): GET /metrics. */
export async function countExportsByStatus(sql: Queryable): Promise<Array<{ status: ExportStatus; n: number }>> {
  return sql<{ status: ExportStatus; n: number }[]>`
    SELECT s.status::text AS status, count(e.id)::int AS n
      FROM unnest(enum_range(NULL::export_status)) AS s(status)
      LEFT JOIN analytics_exports e ON e.status = s.status
     GROUP BY s.status`;
}

/** Queued exports whose run_at has come, and how long the longest-waiting one has waited (0 when none). */
export async function dueQueue(sql: Queryable): Promise<{ depth: number; oldestSeconds: number }> {
  const [row] = await sql<{ depth: number; oldest_seconds: number }[]>`
    SELECT count(*)::int AS depth, coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8 AS oldest_seconds
      FROM analytics_exports WHERE status = 'queued' AND run_at <= now()`;
  return { depth: row!.depth, oldestSeconds: row!.oldest_seconds };
}

/**
 * The heartbeats of what workers run, unsliced exports and slices (a sliced export has no
 * heartbeat of its own while its slices run): the oldest one's age (0 when none runs) and how
 * many workers beat.
 */
export async function runningHeartbeats(sql: Queryable): Promise<{ oldestAgeSeconds: number; workers: number }> {
  const [row] = await sql<{ oldest_age_seconds: number; workers: number }[]>`
    SELECT coalesce(extract(epoch FROM now() - min(heartbeat_at)), 0)::float8 AS oldest_age_seconds,
           count(DISTINCT worker_id)::int AS workers
      FROM (SELECT heartbeat_at, worker_id FROM analytics_exports WHERE status = 'running' AND slices IS NULL
            UNION ALL
            SELECT heartbeat_at, worker_id FROM analytics_export_slices WHERE status = 'running') AS held`;
  return { oldestAgeSeconds: row!.oldest_age_seconds, workers: row!.workers };
}

/** How many slices there are in each status (every status named, zeros included): GET /metrics. */
export async function countSlicesByStatus(sql: Queryable): Promise<Array<{ status: ExportStatus; n: number }>> {
  return sql<{ status: ExportStatus; n: number }[]>`
    SELECT s.status::text AS status, count(x.export_id)::int AS n
      FROM unnest(enum_range(NULL::export_status)) AS s(status)
      LEFT JOIN analytics_export_slices x ON x.status = s.status
     GROUP BY s.status`;
}

/** Which of these object keys a complete export owns, as its object or one of its files (the orphan sweep keeps those). */
export async function ownedObjectKeys(sql: Queryable, keys: string[]): Promise<string[]> {
  const rows = await sql<{ key: string }[]>`
    SELECT object_key AS key FROM analytics_exports WHERE status = 'complete' AND object_key = ANY (${keys}::text[])
    UNION
    SELECT object_key FROM analytics_export_files WHERE object_key = ANY (${keys}::text[])`;
  return rows.map((row) => row.key);
}

/** One file of a complete export, as the API lists it. */
export interface ExportFileRow {
  object_key: string;
  number_of_rows: string | number;
  total_bytes: string | number;
}

/** The attempt each of these exports is running now, by export id (exports not running are absent). */
export async function runningAttempts(sql: Queryable, exportIds: string[]): Promise<Map<string, number>> {
  const rows = await sql<{ id: string; attempts: number }[]>`
    SELECT id::text, attempts FROM analytics_exports WHERE status = 'running' AND id = ANY (${exportIds}::uuid[])`;
  return new Map(rows.map((row) => [row.id, row.attempts]));
}
