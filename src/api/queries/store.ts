import type { Queryable } from '../../db/client';
import { escapeLike } from '../exports/store';
import type { CommonRow } from '../common-fields';
import { isoTimestamp } from '../../db/timestamps';

/** The SQL behind the Analytics Query endpoints, one statement per function. */

/** The definition of a query: the same names in the row and in what is stored. */
interface QueryDefinition {
  metrics: string[];
  devices: string[];
  spaces: string[];
  start: string;
  end: string;
  interval: string;
  aggregation: string | null;
  timezone: string;
}

export interface QueryRow extends CommonRow, QueryDefinition {
  tags: string[];
  customer_scopes: string[];
  partner_scopes: string[];
}

/** What a query is made of, as stored. */
export interface QueryValues extends QueryDefinition {
  name: string;
  notes: string;
  tags: string[];
  customerScopes: string[];
  partnerScopes: string[];
}

const columns = (sql: Queryable) => sql`
  q.id, ${isoTimestamp(sql, 'q.created')} AS created, ${isoTimestamp(sql, 'q.modified')} AS modified, q.created_by,
  q.name, q.notes, q.tags, q.customer_scopes, q.partner_scopes, q.metrics, q.devices, q.spaces,
  ${isoTimestamp(sql, 'q.start')} AS start, ${isoTimestamp(sql, 'q."end"')} AS "end", q.interval, q.aggregation, q.timezone`;

export async function findVisibleQuery(sql: Queryable, callerId: string, id: string): Promise<QueryRow | undefined> {
  const [row] = await sql<QueryRow[]>`
    SELECT ${columns(sql)} FROM analytics_queries q
     WHERE q.id = ${id} AND user_sees_scopes(${callerId}, q.customer_scopes, q.partner_scopes)`;
  return row;
}

export async function listVisibleQueries(
  sql: Queryable,
  callerId: string,
  filters: { tags?: string[] | undefined; nameContains?: string | undefined },
  page: { limit: number; offset: number },
): Promise<QueryRow[]> {
  return sql<QueryRow[]>`
    SELECT ${columns(sql)} FROM analytics_queries q
     WHERE user_sees_scopes(${callerId}, q.customer_scopes, q.partner_scopes)
       ${filters.tags ? sql`AND q.tags @> ${filters.tags}::text[]` : sql``}
       ${filters.nameContains ? sql`AND q.name ILIKE ${`%${escapeLike(filters.nameContains)}%`}` : sql``}
     ORDER BY q.created DESC, q.id DESC
     LIMIT ${page.limit + 1} OFFSET ${page.offset}`;
}

export async function insertQuery(sql: Queryable, createdBy: string, values: QueryValues): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO analytics_queries
      (created_by, name, notes, tags, customer_scopes, partner_scopes, metrics, devices, spaces, start, "end",
       interval, aggregation, timezone)
    VALUES (${createdBy}, ${values.name}, ${values.notes}, ${values.tags}::text[], ${values.customerScopes}::uuid[],
            ${values.partnerScopes}::uuid[], ${values.metrics}::text[], ${values.devices}::uuid[], ${values.spaces}::uuid[],
            ${values.start}, ${values.end}, ${values.interval}, ${values.aggregation}, ${values.timezone})
    RETURNING id`;
  return row!.id;
}

export async function updateQuery(sql: Queryable, id: string, values: QueryValues): Promise<void> {
  await sql`
    UPDATE analytics_queries
       SET name = ${values.name}, notes = ${values.notes}, tags = ${values.tags}::text[],
           customer_scopes = ${values.customerScopes}::uuid[], partner_scopes = ${values.partnerScopes}::uuid[],
           metrics = ${values.metrics}::text[], devices = ${values.devices}::uuid[], spaces = ${values.spaces}::uuid[],
           start = ${values.start}, "end" = ${values.end}, interval = ${values.interval},
           aggregation = ${values.aggregation}, timezone = ${values.timezone}
     WHERE id = ${id}`;
}

/** Deletes the query unless an export refers to it; false when one does. */
export async function deleteUnreferencedQuery(sql: Queryable, id: string): Promise<boolean> {
  const rows = await sql`
    DELETE FROM analytics_queries q
     WHERE q.id = ${id} AND NOT EXISTS (SELECT 1 FROM analytics_exports e WHERE e.query_id = q.id)
    RETURNING q.id`;
  return rows.length > 0;
}

/**
 * What the database knows about a definition's references: metrics missing from the catalogue,
 * devices and spaces the caller may not see (or that do not exist), and whether the time zone is known.
 */
export async function checkReferences(
  sql: Queryable,
  callerId: string,
  values: Pick<QueryValues, 'metrics' | 'devices' | 'spaces' | 'timezone'>,
): Promise<{ unknown_metrics: string[]; unknown_devices: string[]; unknown_spaces: string[]; timezone_known: boolean }> {
  const [row] = await sql<{ unknown_metrics: string[]; unknown_devices: string[]; unknown_spaces: string[]; timezone_known: boolean }[]>`
    SELECT
      ARRAY(SELECT m FROM unnest(${values.metrics}::text[]) AS m
             WHERE NOT EXISTS (SELECT 1 FROM metrics WHERE name = m)) AS unknown_metrics,
      ARRAY(SELECT d::text FROM unnest(${values.devices}::uuid[]) AS d
             WHERE NOT EXISTS (SELECT 1 FROM devices_visible_to(${callerId}) v WHERE v.id = d)) AS unknown_devices,
      ARRAY(SELECT s::text FROM unnest(${values.spaces}::uuid[]) AS s
             WHERE NOT EXISTS (SELECT 1 FROM spaces sp WHERE sp.id = s AND user_sees_customer(${callerId}, sp.customer_id))) AS unknown_spaces,
      EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = ${values.timezone}) AS timezone_known`;
  return row!;
}
