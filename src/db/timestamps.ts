import type { Queryable } from './client';

/**
 * The one timestamp format of the service (API responses, CLI output), as the spec writes it:
 * ISO 8601 in UTC with microseconds and a Z, e.g. "2020-08-13T19:37:21.755074Z". Postgres formats them, so the microseconds it stores are
 * kept exactly and the session's time zone does not matter.
 */
export function isoTimestamp(sql: Queryable, column: string) {
  // Column names are the code's own constants, never input.
  return sql.unsafe(`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);
}

/** A JS Date in the same format (its microseconds are always 000). */
export function formatTimestamp(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
