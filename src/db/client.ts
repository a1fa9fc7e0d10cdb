import postgres from 'postgres';

/**
 * The API side's database handle: postgres.js. (The worker side uses graphile-worker's own
 * node-postgres pool, which pg-copy-streams needs; drizzle only describes the schema for
 * drizzle-kit and runs the migrations.)
 */
export function createDatabase(url: string, options: { max?: number } = {}) {
  const sql = postgres(url, {
    max: options.max ?? 10,
    // Postgres NOTICEs (e.g. "relation already exists, skipping") are not the service's news.
    onnotice: () => {},
    connection: { application_name: 'analytics-export-api' },
    // postgres.js waits before reconnecting after failed connections, its default growing to 20 s
    // (shared by the pool): after a database restart, requests waited that long for a connection.
    // At most a second: a refused connection costs the server nothing.
    backoff: (failures: number) => Math.min(0.05 * 2 ** failures, 1),
  });
  // Dates, times and numeric arrays arrive as the text Postgres prints, and json values are sent
  // as given (the code passes JSON text): the settings drizzle's postgres-js driver made on this
  // client while a drizzle instance was built on it, which every reader and writer relies on.
  for (const oid of AS_TEXT) {
    sql.options.parsers[oid] = asIs;
    sql.options.serializers[oid] = asIs;
  }
  for (const oid of JSON_SENT_AS_IS) sql.options.serializers[oid] = asIs;
  return { sql, close: () => sql.end({ timeout: 5 }) };
}

/** timestamptz, date, time, timestamp, and the arrays date[], timestamptz[], timestamp[], numeric[]. */
const AS_TEXT = [1184, 1082, 1083, 1114, 1182, 1185, 1115, 1231];
/** json, jsonb. */
const JSON_SENT_AS_IS = [114, 3802];
const asIs = (value: unknown) => value;

export type Database = ReturnType<typeof createDatabase>;
export type Sql = Database['sql'];
/** Anything that runs a query: the pool, or a transaction begun on it. */
export type Queryable = Sql | postgres.TransactionSql;

/**
 * The database went away under the query, or refuses connections for now: a restart, a failover,
 * a network cut. Class 08 (connection exception) and 57P01-57P03 (terminated by an administrator
 * or a crash, cannot connect now) from the server; postgres.js's and Node's own codes when there
 * is no server to answer.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return /^08/.test(code) || /^57P0[123]$/.test(code) || CONNECTION_ERROR_CODES.has(code);
}

const CONNECTION_ERROR_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
