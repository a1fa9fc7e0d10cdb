import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema';

/**
 * The API side's database handle: postgres.js with drizzle on top. (The worker side uses
 * graphile-worker's own node-postgres pool, which pg-copy-streams needs.)
 */
export function createDatabase(url: string, options: { max?: number } = {}) {
  const sql = postgres(url, {
    max: options.max ?? 10,
    // Postgres NOTICEs (e.g. "relation already exists, skipping") are not the service's news.
    onnotice: () => {},
    connection: { application_name: 'analytics-export-api' },
  });
  const db = drizzle(sql, { schema });
  return { sql, db, close: () => sql.end({ timeout: 5 }) };
}

export type Database = ReturnType<typeof createDatabase>;
export type Db = Database['db'];
export type Sql = Database['sql'];
/** Anything that runs a query: the pool, or a transaction begun on it. */
export type Queryable = Sql | postgres.TransactionSql;
