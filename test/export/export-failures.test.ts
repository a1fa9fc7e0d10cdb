import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createExport } from '../../src/exports/create-export';
import { createTestDatabase } from '../support/database';
import { createQuery, insertExport, seedCustomerReadings } from '../support/fixtures';
import { createTestBucket, paceUploadParts, startPrivateS3, startRefusingS3 } from '../support/s3';
import { copyBackends, readExport, waitForExport, waitForFinalExport } from '../support/export-rows';
import { objectsOf } from '../support/objects';
import { startTestWorker } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * Each way an export can fail, with a real Postgres and a real s3rver: what state it ends in,
 * what `errors` says, whether it is retried, and that nothing is left behind (no object, no
 * busy backend).
 */

const month = { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-01-31T00:00:00Z') };

/** A customer with devices and `days` of 1-minute readings of two metrics each. */
const seed = seedCustomerReadings;

// One database per worker configuration, all made at the top level (see test/support/worker.ts).
const queries = await createTestDatabase();
const queriesBucket = await createTestBucket();
await startTestWorker(queries, queriesBucket, { EXPORT_STATEMENT_TIMEOUT_S: '1' });
const cancels = await createTestDatabase();
const cancelsBucket = await createTestBucket();
// Heartbeats that may wait a minute for a row lock: one test holds the export's row while its upload ends.
const cancelsWorker = await startTestWorker(cancels, cancelsBucket, { EXPORT_HEARTBEAT_TIMEOUT_S: '60' });
// Parts paced a little, so that the COPY is still streaming when a test cancels it.
paceUploadParts(cancelsWorker.context.s3, 200);
const unreachable = await createTestDatabase();
// HeadBucket answers (the worker takes jobs); every upload gets 503 SlowDown.
const throttling = await startRefusingS3(503, 'SlowDown');
after(() => throttling.close());
// S3_MAX_ATTEMPTS=1: each attempt fails at the first refusal, so that the attempts show.
await startTestWorker(
  unreachable,
  { ...queriesBucket, config: { ...queriesBucket.config, endpoint: throttling.endpoint } },
  { EXPORT_RETRY_DELAY_S: '1', S3_MAX_ATTEMPTS: '1' },
);
const stopped = await createTestDatabase();
const privateS3 = await startPrivateS3();
const stoppedBucket = await createTestBucket(privateS3.endpoint);
const stoppedWorker = await startTestWorker(stopped, stoppedBucket, { EXPORT_RETRY_DELAY_S: '2', S3_MAX_ATTEMPTS: '1' });
// Parts paced, so that the test stops s3rver while the upload is under way however fast the machine.
paceUploadParts(stoppedWorker.context.s3, 500);

describe('query failures are final at once', async () => {
  const database = queries;
  const bucket = queriesBucket;
  const { sql } = database;
  const { user, queryId } = await seed(sql, 2, 1);

  test('a Postgres error fails the export with query_error and the Postgres message, without retry', async () => {
    // The visibility rules break for everyone: the SELECT itself raises.
    await sql`CREATE FUNCTION test_broken() RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'visibility rules are broken'; END $$`;
    await sql.unsafe(`ALTER FUNCTION devices_visible_to(uuid) RENAME TO devices_visible_to_saved`);
    await sql.unsafe(`CREATE FUNCTION devices_visible_to(viewer uuid) RETURNS SETOF devices LANGUAGE plpgsql AS $$
      BEGIN PERFORM test_broken(); RETURN QUERY SELECT * FROM devices_visible_to_saved(viewer); END $$`);
    try {
      const id = await insertExport(sql, user.id, queryId);
      const final = await waitForFinalExport(sql, id);
      assert.equal(final.status, 'failed');
      assert.equal(final.errors!.code, 'query_error');
      assert.equal(final.errors!.message, 'visibility rules are broken');
      assert.equal(final.errors!.sqlstate, 'P0001');
      assert.equal(final.attempts, 1, 'not retried');
      assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, id), []);
    } finally {
      await sql.unsafe(`DROP FUNCTION devices_visible_to(uuid)`);
      await sql.unsafe(`ALTER FUNCTION devices_visible_to_saved(uuid) RENAME TO devices_visible_to`);
    }
  });

  test('the statement timeout fails the export with timeout, without retry', async () => {
    // The export's COPY waits behind this lock until its statement_timeout (1 s) fires.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const transaction = sql.begin(async (tx) => {
      await tx`LOCK TABLE device_readings IN ACCESS EXCLUSIVE MODE`;
      locked();
      await held;
    });
    try {
      await isLocked;
      const id = await insertExport(sql, user.id, queryId);
      const final = await waitForFinalExport(sql, id);
      assert.equal(final.status, 'failed');
      assert.equal(final.errors!.code, 'timeout');
      assert.equal(final.errors!.message, 'canceling statement due to statement timeout');
      assert.equal(final.attempts, 1);
    } finally {
      release();
      await transaction;
    }
    assert.equal(await copyBackends(database), 0);
  });

  test('a definition that cannot be compiled fails with query_error before any SQL runs', async () => {
    const badMetric = await createQuery(sql, user.id, {
      metrics: ['no_such_metric'],
      start: month.start.toISOString(),
      end: month.end.toISOString(),
    });
    const badZone = await createQuery(sql, user.id, {
      metrics: ['temperature'],
      start: month.start.toISOString(),
      end: month.end.toISOString(),
      interval: '1d',
      aggregation: 'avg',
      timezone: "Europe/Nowhere'; SELECT 1; --",
    });
    const metric = await waitForFinalExport(sql, await insertExport(sql, user.id, badMetric));
    assert.equal(metric.errors!.code, 'query_error');
    assert.match(metric.errors!.message, /not in the catalogue: no_such_metric/);
    const zone = await waitForFinalExport(sql, await insertExport(sql, user.id, badZone));
    assert.equal(zone.errors!.code, 'query_error');
    assert.match(zone.errors!.message, /timezone is not a time zone name/);
  });
});

describe('a format from a newer version (a rolling upgrade)', async () => {
  const { sql } = queries;
  const bucket = queriesBucket;
  const { user, queryId } = await seed(sql, 1, 1);

  test('is retried as internal, saying what the worker does not know, and writes nothing', async () => {
    // What a later migration would do; this database is this file's alone.
    await sql.unsafe(`ALTER TYPE export_format ADD VALUE IF NOT EXISTS 'ndjson-next'`);
    const id = await insertExport(sql, user.id, queryId, { format: 'ndjson-next' as never });
    // The test worker retries at once (EXPORT_RETRY_DELAY_S=0), so every attempt is spent on it.
    const final = await waitForFinalExport(sql, id);
    assert.equal(final.status, 'failed');
    assert.equal(final.attempts, 5, 'retried until its attempts (5, as insertExport makes it) ran out');
    assert.equal(final.errors!.code, 'internal');
    assert.match(String(final.errors!.message), /does not know the export's format ndjson-next/);
    assert.equal(final.rows_written, 0);
    assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, id), []);
  });
});

describe('cancellation', async () => {
  const database = cancels;
  const bucket = cancelsBucket;
  const { sql } = database;
  // Big enough to take several seconds: 4 devices x 2 metrics x 60 days of minutes = 691,200 rows.
  const { user, queryId } = await seed(sql, 4, 60);

  test('stops a running export within a second: COPY gone from pg_stat_activity, no object, failed "cancelled"', async (t) => {
    const id = await insertExport(sql, user.id, queryId);
    await waitForExport(sql, id, (row) => row.status === 'running' && (row.bytes_written ?? 0) > 0, 30_000);
    await waitFor(async () => ((await copyBackends(database)) === 1 ? true : undefined), 30_000, 'the COPY to be running', 20);
    const asked = Date.now();
    const [cancel] = await sql`SELECT cancel_export(${id}) AS status`;
    assert.equal(cancel!.status, 'running');
    const final = await waitForExport(sql, id, (row) => row.status !== 'running', 5000);
    const stoppedMs = Date.now() - asked;
    await waitFor(async () => ((await copyBackends(database)) === 0 ? true : undefined), 1000, 'the COPY backend to go', 20);
    const goneMs = Date.now() - asked;
    t.diagnostic(`failed ${stoppedMs} ms and backend gone ${goneMs} ms after cancel_export()`);
    assert.equal(final.status, 'failed');
    assert.equal(final.errors!.code, 'cancelled');
    assert.ok(stoppedMs < 1000, `failed ${stoppedMs} ms after the cancel`);
    assert.ok(goneMs < 1500, `backend gone ${goneMs} ms after the cancel`);
    assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, id), []);
  });

  test('a cancel whose NOTIFY was missed is noticed by the heartbeat', async () => {
    const id = await insertExport(sql, user.id, queryId);
    await waitForExport(sql, id, (row) => row.status === 'running', 30_000);
    await sql`UPDATE analytics_exports SET cancel_requested_at = now() WHERE id = ${id}`;
    const final = await waitForExport(sql, id, (row) => row.status !== 'running', 3000);
    assert.equal(final.errors!.code, 'cancelled');
    await waitFor(async () => ((await copyBackends(database)) === 0 ? true : undefined), 2000, 'the COPY backend to go');
  });

  test('an export deleted while its upload finishes leaves no object behind', async () => {
    const id = await insertExport(sql, user.id, queryId);
    const objects = () => objectsOf(bucket.client, bucket.config.bucket, id);
    await waitForExport(sql, id, (row) => row.status === 'running', 30_000);
    // Holding the row's lock, the worker's heartbeat and its final UPDATE wait while the upload
    // completes; the row is then deleted under them, as the API's DELETE would.
    await sql.begin(async (tx) => {
      await tx`SELECT 1 FROM analytics_exports WHERE id = ${id} FOR UPDATE`;
      await waitFor(async () => ((await objects()).length > 0 ? true : undefined), 60_000, 'the upload');
      await tx`DELETE FROM analytics_exports WHERE id = ${id}`;
    });
    await waitFor(async () => ((await objects()).length === 0 ? true : undefined), 10_000, 'the object to be removed');
  });

  test('fails a queued export at once, and its job then finds nothing to do', async () => {
    const id = await sql.begin(async (tx) => {
      const created = await insertExport(tx, user.id, queryId);
      await tx`SELECT cancel_export(${created})`;
      return created;
    });
    const row = await readExport(sql, id);
    assert.equal(row!.status, 'failed');
    assert.equal(row!.errors!.code, 'cancelled');
    await waitFor(
      async () => {
        const [job] = await sql`SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE key = ${`analytics_export:${id}`}`;
        return job!.n === 0 ? true : undefined;
      },
      10_000,
      'the job to be done',
    );
    assert.equal((await readExport(sql, id))!.attempts, 0, 'never claimed');
  });
});

describe('storage faults are retried, then fail with the real cause', async () => {
  test('S3 throttling (503 SlowDown): back to queued with the attempt visible, then failed storage_error after the last attempt', async () => {
    const { sql } = unreachable;
    const { user, queryId } = await seed(sql, 1, 1);
    const { id } = await createExport(sql, {
      createdBy: user.id,
      name: 'unreachable',
      notes: '',
      queryId,
      tags: [],
      customerScopes: [],
      partnerScopes: [],
      maxAttempts: 2,
    });
    const retrying = await waitForExport(sql, id, (row) => row.status === 'queued' && row.last_error !== null, 30_000);
    assert.equal(retrying.attempts, 1);
    assert.equal(retrying.last_error!.code, 'storage_error');
    assert.equal(retrying.last_error!.error, 'SlowDown');
    const final = await waitForFinalExport(sql, id);
    assert.equal(final.status, 'failed');
    assert.equal(final.attempts, 2);
    assert.equal(final.errors!.code, 'storage_error');
    assert.equal(final.errors!.http_status, 503);
  });

  test('s3rver stopped mid-export: the attempt fails with the real cause, and the retry completes exactly', async () => {
    const { sql } = stopped;
    const s3 = privateS3;
    const bucket = stoppedBucket;
    const { user, queryId, rows } = await seed(sql, 3, 30);
    const id = await insertExport(sql, user.id, queryId);
    // Past the first 5 MiB part: a multipart upload is under way.
    await waitForExport(sql, id, (row) => row.status === 'running' && (row.bytes_written ?? 0) > 6 * 1024 * 1024, 60_000);
    await s3.stop();
    const retrying = await waitForExport(sql, id, (row) => row.status !== 'running', 30_000);
    assert.equal(retrying.status, 'queued');
    assert.equal(retrying.last_error!.code, 'storage_error');
    // A 405 status, not the digits of a port (ECONNREFUSED 127.0.0.1:40509).
    assert.doesNotMatch(
      retrying.last_error!.message,
      /(^|[^:\d])405\b|Method Not Allowed|AbortMultipartUpload/i,
      'not the masking abort error',
    );
    assert.equal(retrying.rows_written, null, 'no counts from the partial run');
    assert.equal(await copyBackends(stopped), 0, 'the aborted COPY’s backend is gone');
    await s3.restart();
    const final = await waitForFinalExport(sql, id, 90_000);
    assert.equal(final.status, 'complete', JSON.stringify(final));
    assert.equal(final.attempts, 2);
    assert.equal(final.number_of_rows, rows);
    const head = await bucket.client.send(new HeadObjectCommand({ Bucket: bucket.config.bucket, Key: final.object_key! }));
    assert.equal(head.ContentLength, final.total_bytes);
  });
});
