import type { Queryable } from '../../db/client';
import { insertExport, type NewExport } from '../../exports/create-export';
import type { CommonRow } from '../common-fields';
import { isoTimestamp } from '../../db/timestamps';

/**
 * The SQL behind the export endpoints, one statement per function. Visibility is always the
 * database's user_sees_scopes(), the same rule the export worker applies.
 */

export interface ExportRow extends CommonRow {
  query_id: string;
  status: 'queued' | 'running' | 'complete' | 'failed';
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
}

const columns = (sql: Queryable) => sql`
  e.id, ${isoTimestamp(sql, 'e.created')} AS created, ${isoTimestamp(sql, 'e.modified')} AS modified,
  e.created_by, e.name, e.notes, e.query_id, e.status, e.errors, e.number_of_rows, e.total_bytes, e.tags,
  e.customer_scopes, e.partner_scopes, e.object_key, e.attempts,
  ${isoTimestamp(sql, 'e.started')} AS started, ${isoTimestamp(sql, 'e.finished')} AS finished,
  ${isoTimestamp(sql, 'e.heartbeat_at')} AS heartbeat_at, e.rows_written, e.bytes_written`;

/** Creates an export and reads it back as the API shows it, in one statement (and transaction). */
export async function createExportRow(sql: Queryable, input: NewExport): Promise<ExportRow> {
  const [row] = await sql<ExportRow[]>`WITH e AS (${insertExport(sql, input)}) SELECT ${columns(sql)} FROM e`;
  return row!;
}

export async function findVisibleExport(sql: Queryable, callerId: string, id: string): Promise<ExportRow | undefined> {
  const [row] = await sql<ExportRow[]>`
    SELECT ${columns(sql)} FROM analytics_exports e
     WHERE e.id = ${id} AND user_sees_scopes(${callerId}, e.customer_scopes, e.partner_scopes)`;
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

export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (ch) => `\\${ch}`);
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

export async function queryIsVisible(sql: Queryable, callerId: string, queryId: string): Promise<boolean> {
  const [row] = await sql`
    SELECT 1 FROM analytics_queries q
     WHERE q.id = ${queryId} AND user_sees_scopes(${callerId}, q.customer_scopes, q.partner_scopes)`;
  return row !== undefined;
}
