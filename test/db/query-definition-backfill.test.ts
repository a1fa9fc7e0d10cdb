import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate as drizzleMigrate } from 'drizzle-orm/postgres-js/migrator';
import { Logger, runMigrations as graphileMigrate } from 'graphile-worker';
import postgres from 'postgres';
import { compileExportQuery } from '../../src/exports/load-export-query';
import { MIGRATIONS_FOLDER, migrate } from '../../src/db/migrate';
import { databaseUrl } from '../support/database';
import { testEnvironment } from '../support/environment';
import { createCustomer, createPartner, createQuery, createUser } from '../support/fixtures';

/**
 * Exports made before analytics_exports.query_definition existed get the definition of their
 * query as it was when the column was added (migration 0009), and run it as any other export.
 */

const admin = postgres(testEnvironment.postgresUrl, { max: 1, onnotice: () => {} });
const name = `backfill_${randomBytes(6).toString('hex')}`;
const before0009 = mkdtempSync(path.join(os.tmpdir(), 'migrations-'));
after(async () => {
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
  rmSync(before0009, { recursive: true, force: true });
});

test('migration 0009 gives existing exports their query’s definition, which they then run', async () => {
  // The migrations up to 0008 only.
  cpSync(MIGRATIONS_FOLDER, before0009, { recursive: true });
  const journalPath = path.join(before0009, 'meta/_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: Array<{ idx: number }> };
  journal.entries = journal.entries.filter((entry) => entry.idx < 9);
  writeFileSync(journalPath, JSON.stringify(journal));

  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = databaseUrl(name);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await graphileMigrate({ connectionString: url, logger: new Logger(() => () => {}) });
    await drizzleMigrate(drizzle(sql), { migrationsFolder: before0009 });
    const [column] =
      await sql`SELECT 1 FROM information_schema.columns WHERE table_name = 'analytics_exports' AND column_name = 'query_definition'`;
    assert.equal(column, undefined, 'not there before 0009');

    const customerId = await createCustomer(sql, await createPartner(sql));
    const user = await createUser(sql, 'customer', { customerId });
    const queryId = await createQuery(sql, user.id, {
      metrics: ['energy', 'temperature'],
      devices: ['00000000-0000-4000-8000-000000000001'],
      start: '2026-02-01T00:00:00Z',
      end: '2026-02-02T00:00:00Z',
      interval: '1d',
      aggregation: 'sum',
      timezone: 'Europe/Berlin',
    });
    // A plain INSERT of the columns there were: the service's statement names columns of later migrations.
    const [inserted] = await sql<{ id: string }[]>`
      INSERT INTO analytics_exports (created_by, name, query_id, customer_scopes)
      VALUES (${user.id}, 'Before 0009', ${queryId}, ${[customerId]}::uuid[]) RETURNING id`;
    const exportId = inserted!.id;

    await migrate(url);
    const [row] = await sql<
      { definition: Record<string, unknown> }[]
    >`SELECT query_definition AS definition FROM analytics_exports WHERE id = ${exportId}`;
    assert.deepEqual(
      { ...row!.definition, start: Date.parse(row!.definition.start as string), end: Date.parse(row!.definition.end as string) },
      {
        metrics: ['energy', 'temperature'],
        devices: ['00000000-0000-4000-8000-000000000001'],
        spaces: [],
        start: Date.parse('2026-02-01T00:00:00Z'),
        end: Date.parse('2026-02-02T00:00:00Z'),
        interval: '1d',
        aggregation: 'sum',
        timezone: 'Europe/Berlin',
      },
    );
    const [notNull] = await sql<{ is_nullable: string }[]>`
      SELECT is_nullable FROM information_schema.columns WHERE table_name = 'analytics_exports' AND column_name = 'query_definition'`;
    assert.equal(notNull!.is_nullable, 'NO');
    const select = await compileExportQuery(sql, exportId);
    assert.match(select, /date_trunc\('day', r\.ts, 'Europe\/Berlin'\)/);
    await sql.unsafe(select);
  } finally {
    await sql.end();
  }
});
