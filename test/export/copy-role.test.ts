import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { generateReadings } from '../../src/demo/readings';
import { createMetrics } from '../../src/observability/metrics';
import { createS3Client } from '../../src/storage/s3-client';
import { EXPORT_READER_ROLE } from '../../src/worker/copy-to-object';
import { startWorker } from '../../src/service';
import type { ServiceContext } from '../../src/context';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { createCustomer, createDevice, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';
import { createTestBucket, type TestBucket } from '../support/s3';
import { getObject } from '../support/objects';
import { startTestWorker, testConfig } from '../support/worker';
import { waitForFinalExport } from '../support/export-rows';

/**
 * The COPY sessions run as the reader role the migration made, which can only read: even a
 * session that turns read-only off cannot change data. Where the worker cannot take that role
 * it says so at start and its sessions stay read-only by default.
 */

const database = await createTestDatabase();
// A second database whose reader role lacks a grant: the worker there must fall back.
const withoutGrants = await createTestDatabase();
const bucket = await createTestBucket();
const worker = await startTestWorker(database, bucket);

/** One customer, two devices with a day of readings, and an export of them; its final row. */
async function runExport(db: TestDatabase) {
  const customerId = await createCustomer(db.sql, await createPartner(db.sql));
  const user = await createUser(db.sql, 'customer', { customerId });
  const devices = [await createDevice(db.sql, customerId), await createDevice(db.sql, customerId)];
  const day = { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-03-02T00:00:00Z') };
  await generateReadings(db.sql, { deviceIds: devices, metrics: ['temperature'], ...day, step: '1h' });
  const queryId = await createQuery(db.sql, user.id, {
    metrics: ['temperature'],
    start: day.start.toISOString(),
    end: day.end.toISOString(),
  });
  return waitForFinalExport(db.sql, await insertExport(db.sql, user.id, queryId));
}

describe('COPY sessions run as the reader role', () => {
  test('the role the migration made, with SELECT on what an export reads and nothing else', async () => {
    const [role] = await database.sql`
      SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb,
             has_table_privilege(${EXPORT_READER_ROLE}, 'device_readings', 'SELECT') AS reads_readings,
             has_table_privilege(${EXPORT_READER_ROLE}, 'device_readings', 'INSERT,UPDATE,DELETE,TRUNCATE') AS writes_readings,
             has_table_privilege(${EXPORT_READER_ROLE}, 'analytics_exports', 'SELECT') AS reads_exports,
             has_table_privilege(${EXPORT_READER_ROLE}, 'api_keys', 'SELECT') AS reads_keys,
             has_schema_privilege(${EXPORT_READER_ROLE}, 'public', 'CREATE') AS creates
        FROM pg_roles WHERE rolname = ${EXPORT_READER_ROLE}`;
    assert.deepEqual(
      { ...role },
      {
        rolcanlogin: false,
        rolsuper: false,
        rolcreaterole: false,
        rolcreatedb: false,
        reads_readings: true,
        writes_readings: false,
        reads_exports: false,
        reads_keys: false,
        creates: false,
      },
    );
  });

  test('a session of the COPY pool cannot write, even after turning read-only off', async () => {
    const client = await worker.copyPool.connect();
    try {
      const { rows } = await client.query<{ user: string; read_only: string }>(
        `SELECT current_user AS user, current_setting('transaction_read_only') AS read_only`,
      );
      assert.deepEqual(rows[0], { user: EXPORT_READER_ROLE, read_only: 'on' });
      await client.query('SET default_transaction_read_only = off');
      for (const statement of [
        `INSERT INTO partners (name) VALUES ('written by a COPY session')`,
        `UPDATE devices SET name = 'renamed by a COPY session'`,
        'DELETE FROM device_readings',
        `UPDATE analytics_exports SET name = 'renamed by a COPY session'`,
        'CREATE TABLE written_by_a_copy_session (a int)',
      ]) {
        await assert.rejects(client.query(statement), /permission denied/, statement);
      }
      await client.query('BEGIN');
      await client.query('SET TRANSACTION READ WRITE');
      await assert.rejects(client.query(`INSERT INTO partners (name) VALUES ('written by a COPY session')`), /permission denied/);
      await client.query('ROLLBACK');
    } finally {
      // Its settings were changed: the connection is not given back to the pool.
      client.release(true);
    }
    const [written] = await database.sql`SELECT count(*)::int AS n FROM partners WHERE name = 'written by a COPY session'`;
    assert.equal(written!.n, 0);
  });

  test('an export still completes, every row in its file', async () => {
    const final = await runExport(database);
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    assert.equal(final.number_of_rows, 48);
    const { body } = await getObject(bucket.client, bucket.config.bucket, final.object_key!);
    assert.equal(body.toString('utf8').trimEnd().split('\n').length, 1 + 48);
  });
});

describe('where the worker cannot take the role', () => {
  test('it logs a warning at start, its COPY sessions stay read-only by default, and exports complete', async () => {
    // As if the role had been made by another database's migration after this one migrated.
    await withoutGrants.sql.unsafe(`REVOKE SELECT ON metrics FROM ${EXPORT_READER_ROLE}`);
    const lines: Array<Record<string, unknown>> = [];
    const otherBucket: TestBucket = await createTestBucket();
    const config = testConfig(withoutGrants, otherBucket);
    const context: ServiceContext = {
      config,
      databaseUrl: withoutGrants.url,
      database: withoutGrants,
      s3: createS3Client(config.s3),
      logger: pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) }),
      metrics: createMetrics(withoutGrants.sql),
    };
    const fallback = await startWorker(context);
    try {
      const warning = lines.find((line) => line.level === 40 && line.role === EXPORT_READER_ROLE);
      assert.ok(warning, 'a warning names the role');
      assert.match(String(warning.msg), /read-only only by default_transaction_read_only/);
      const { rows } = await fallback.copyPool.query<{ user: string; read_only: string }>(
        `SELECT current_user AS user, current_setting('transaction_read_only') AS read_only`,
      );
      assert.notEqual(rows[0]!.user, EXPORT_READER_ROLE);
      assert.equal(rows[0]!.read_only, 'on');
      await assert.rejects(fallback.copyPool.query(`INSERT INTO partners (name) VALUES ('x')`), /read-only transaction/);
      const final = await runExport(withoutGrants);
      assert.equal(final.status, 'complete', JSON.stringify(final.errors));
      assert.equal(final.number_of_rows, 48);
    } finally {
      await fallback.stop();
      context.s3.destroy();
    }
  });
});
