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

test('databases of one cluster migrating at once share one reader role for exports, granted in each', async () => {
  const urls = await Promise.all([emptyDatabase(), emptyDatabase(), emptyDatabase()]);
  await Promise.all(urls.map((url) => migrate(url)));
  const grants = async (role: string) =>
    Promise.all(
      urls.map(async (url) => {
        const sql = postgres(url, { max: 1, onnotice: () => {} });
        try {
          const [row] = await sql`
            SELECT has_table_privilege(${role}, 'device_readings', 'SELECT') AS reads,
                   has_table_privilege(${role}, 'device_readings', 'INSERT') AS writes,
                   pg_has_role(current_user, ${role}, 'MEMBER') AS usable`;
          return { ...row };
        } finally {
          await sql.end();
        }
      }),
    );
  const expected = urls.map(() => ({ reads: true, writes: false, usable: true }));
  assert.deepEqual(await grants('analytics_export_reader'), expected);

  // The role exists already in this cluster: run the migration's own SQL for a role of this
  // test's in the three databases at once, so that they race to create it.
  const role = `export_reader_${randomBytes(4).toString('hex')}`;
  const migration = readFileSync(path.join(MIGRATIONS_FOLDER, '0011_export_reader_role.sql'), 'utf8').replaceAll(
    'analytics_export_reader',
    role,
  );
  const sessions = urls.map((url) => postgres(url, { max: 1, onnotice: () => {} }));
  try {
    await Promise.all(sessions.map((sql) => sql.unsafe(migration)));
    assert.deepEqual(await grants(role), expected);
    const [count] = await admin`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ${role}`;
    assert.equal(count!.n, 1);
  } finally {
    for (const sql of sessions) {
      await sql.unsafe(`DROP OWNED BY ${role}`);
      await sql.end();
    }
    await admin.unsafe(`DROP ROLE IF EXISTS ${role}`);
  }
});
