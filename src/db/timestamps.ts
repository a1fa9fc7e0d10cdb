/**
 * Timestamps leave the API as the contract writes them (docs/api.md): ISO 8601 in UTC with microseconds and a Z,
 * e.g. "2020-08-13T19:37:21.755074Z". Postgres formats the stored ones (isoTimestamp in
 * src/db/statements/fragments.ts), so the microseconds it stores are kept exactly.
 */

/** A JS Date in that format (its microseconds are always 000). */
export function formatTimestamp(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
