import type { Queryable } from '../client';

/** Pieces of SQL (and of rows) the statements of several tables share. */

/**
 * The fields every platform object starts with (id, created, modified, created_by, name, notes),
 * as the statements read them, in that order.
 */
export interface CommonRow {
  id: string;
  created: string;
  modified: string;
  created_by: string;
  name: string;
  notes: string;
}

/**
 * A timestamp column as the API shows it: ISO 8601 in UTC with microseconds and a Z, e.g.
 * "2020-08-13T19:37:21.755074Z". Postgres formats it, so the microseconds it stores are kept
 * exactly and the session's time zone does not matter.
 */
export function isoTimestamp(sql: Queryable, column: string) {
  // Column names are the code's own constants, never input.
  return sql.unsafe(`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);
}

/** A string matched literally by LIKE / ILIKE (its %, _ and \ escaped). */
export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (ch) => `\\${ch}`);
}
