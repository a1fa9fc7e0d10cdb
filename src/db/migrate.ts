import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate as drizzleMigrate } from 'drizzle-orm/postgres-js/migrator';
import { Logger, runMigrations as graphileMigrate } from 'graphile-worker';
import postgres from 'postgres';

export const MIGRATIONS_FOLDER = findMigrationsFolder(path.dirname(fileURLToPath(import.meta.url)));

/** `drizzle/` at the project's root, found from this module whether it runs as src/db/migrate.ts (tsx) or bundled in dist/. */
function findMigrationsFolder(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'drizzle');
    if (existsSync(path.join(candidate, 'meta', '_journal.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`no drizzle/meta/_journal.json above ${from}`);
  }
}

// Any fixed number: every process that migrates takes this lock first, so that many workers
// starting together on one database migrate it once, one after another.
const MIGRATION_LOCK = 7_141_203_311;

/**
 * Brings a database up to date: graphile-worker's schema first (the export triggers add jobs
 * through it), then ours. Safe to run on every start and from many processes at once.
 */
export async function migrate(databaseUrl: string): Promise<void> {
  // One connection, so that the session-level advisory lock covers every statement below.
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
    // graphile-worker logs each of its migrations; the service reports "migrated" once itself.
    await graphileMigrate({ connectionString: databaseUrl, logger: new Logger(() => () => {}) });
    await drizzleMigrate(drizzle(sql), { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => undefined);
    await sql.end({ timeout: 5 });
  }
}
