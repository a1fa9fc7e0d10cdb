import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import postgres from 'postgres';
import { MIGRATIONS_FOLDER, migrate } from '../../src/db/migrate';
import { databaseUrl } from '../support/database';
import { testEnvironment } from '../support/environment';

const admin = postgres(testEnvironment.postgresUrl, { max: 1, onnotice: () => {} });
const made: string[] = [];
after(async () => {
  for (const name of made) await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

async function emptyDatabase(): Promise<string> {
  const name = `empty_${randomBytes(6).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  made.push(name);
  return databaseUrl(name);
}

const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')) as { entries: unknown[] };

async function inspect(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`
      SELECT (SELECT count(*) FROM drizzle.__drizzle_migrations)::int AS applied,
             (SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public')::int AS tables,
             (SELECT count(*) FROM metrics)::int AS metrics,
             to_regnamespace('graphile_worker') IS NOT NULL AS has_queue,
             (SELECT enum_range(NULL::export_status))::text AS statuses`;
    return row!;
  } finally {
    await sql.end();
  }
}

test('migrations build an empty database, and running them again changes nothing', async () => {
  const url = await emptyDatabase();
  await migrate(url);
  const first = await inspect(url);
  assert.equal(first.applied, journal.entries.length);
  assert.ok(first.tables >= 10);
  assert.equal(first.has_queue, true);
  assert.equal(first.statuses, '{queued,running,complete,failed}');
  assert.equal(first.metrics, 6);

  await migrate(url);
  assert.deepEqual(await inspect(url), first);
});

test('many processes migrating one database at once migrate it once', async () => {
  const url = await emptyDatabase();
  await Promise.all([migrate(url), migrate(url), migrate(url), migrate(url)]);
  const state = await inspect(url);
  assert.equal(state.applied, journal.entries.length);
  assert.equal(state.metrics, 6);
});
