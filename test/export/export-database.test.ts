import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import postgres from 'postgres';
import { createDatabase } from '../../src/db/client';
import { migrate } from '../../src/db/migrate';
import { compileExportQuery } from '../../src/exports/load-export-query';
import type { TestDatabase } from '../support/database';
import { directCopy, readExport, waitForExport, waitForFinalExport } from '../support/export-rows';
import { createCustomer, insertExport, seedCustomerReadings } from '../support/fixtures';
import { getObject } from '../support/objects';
import { startPrimaryAndStandby } from '../support/replication';
import { createTestBucket, paceUploadParts } from '../support/s3';
import { startTestWorker } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * EXPORT_DATABASE_URL on a real physical standby: the COPY runs on the standby while state and
 * queue stay on the primary; a standby whose replay is paused past EXPORT_REPLICA_MAX_LAG_S, or
 * one that is stopped, is a retried fault with its own code, and the export completes with the
 * primary's data once the standby is back.
 */

const { primary, standby } = await startPrimaryAndStandby();
const DATABASE = 'exports';
{
  const admin = postgres(primary.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${DATABASE}`);
  await admin.end();
}
await migrate(primary.url(DATABASE));
const database: TestDatabase = { ...createDatabase(primary.url(DATABASE)), name: DATABASE, url: primary.url(DATABASE) };
after(() => database.close());
const onStandby = postgres(standby.url(DATABASE), { max: 1, onnotice: () => {} });
after(() => onStandby.end());
const bucket = await createTestBucket();
const worker = await startTestWorker(database, bucket, {
  EXPORT_DATABASE_URL: standby.url(DATABASE),
  EXPORT_REPLICA_MAX_LAG_S: '1',
  EXPORT_RETRY_DELAY_S: '1',
  EXPORT_MAX_ATTEMPTS: '10',
});
// Each 5 MiB part held a second: the COPY of a two-part export streams long enough to be seen.
paceUploadParts(worker.context.s3, 1000);

const { sql } = database;
const seeded = await seedCustomerReadings(sql, 3, 10);

/** The export's file is byte for byte what its SELECT gives on the primary now. */
async function assertPrimaryData(id: string) {
  const final = await readExport(sql, id);
  const written = await getObject(bucket.client, bucket.config.bucket, final!.object_key!);
  const expected = await directCopy(database.url, await compileExportQuery(sql, id));
  assert.ok(expected.equals(written.body), `the file is the primary's data (${written.body.length} vs ${expected.length} bytes)`);
}

/** Waits until the standby has replayed everything the primary has written so far. */
async function standbyCaughtUp() {
  const [{ lsn }] = (await sql`SELECT pg_current_wal_lsn()::text AS lsn`) as unknown as [{ lsn: string }];
  await waitFor(
    async () => {
      const [row] = await onStandby`SELECT pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn AS done`;
      return row?.done ? true : undefined;
    },
    60_000,
    'the standby to catch up',
  );
}

describe('exports read from a streaming standby (EXPORT_DATABASE_URL)', () => {
  test('the standby is a physical standby of the primary, with the readings replicated', async () => {
    await standbyCaughtUp();
    const [row] = await onStandby`SELECT pg_is_in_recovery() AS standby, (SELECT count(*)::int FROM device_readings) AS readings`;
    assert.equal(row!.standby, true);
    assert.equal(row!.readings, seeded.rows);
  });

  test("the export's COPY runs on the standby, not on the primary, and the file is the data", async () => {
    const id = await insertExport(sql, seeded.user.id, seeded.queryId);
    await waitForExport(sql, id, (row) => row.status === 'running');
    const copying = await waitFor(
      async () => {
        const rows = await onStandby`
          SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE application_name = 'analytics-export-copy' AND state = 'active' AND query LIKE 'COPY (%'`;
        return rows[0]!.n > 0 ? rows[0]!.n : undefined;
      },
      30_000,
      'a COPY on the standby',
    );
    assert.equal(copying, 1);
    const [onPrimary] = await sql`
      SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'analytics-export-copy' AND query LIKE 'COPY (%'`;
    assert.equal(onPrimary!.n, 0, 'no COPY on the primary');
    const final = await waitForFinalExport(sql, id, 120_000);
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    assert.equal(final.number_of_rows, seeded.rows);
    assert.ok(final.total_bytes! > 5 * 1024 * 1024, 'multipart: the paced upload kept the COPY running');
    await assertPrimaryData(id);
  });

  test('a standby whose replay is paused past EXPORT_REPLICA_MAX_LAG_S: export_database_behind, retried, then the primary’s data', async () => {
    await standbyCaughtUp();
    await onStandby`SELECT pg_wal_replay_pause()`;
    let resumed = false;
    try {
      // Committed on the primary before the export: the paused standby still has the device with
      // its customer, so a file made from it would hold the moved device's rows.
      const [device] = seeded.deviceIds;
      await sql`UPDATE devices SET customer_id = ${await createCustomer(sql, (await sql`SELECT partner_id FROM customers WHERE id = ${seeded.customerId}`)[0]!.partner_id)} WHERE id = ${device!}`;
      const id = await insertExport(sql, seeded.user.id, seeded.queryId);
      const requeued = await waitForExport(sql, id, (row) => row.status === 'queued' && row.attempts >= 1, 60_000);
      assert.equal(requeued.last_error!.code, 'export_database_behind');
      assert.match(requeued.last_error!.message, /EXPORT_REPLICA_MAX_LAG_S/);
      assert.equal(requeued.last_error!.max_lag_s, 1);
      assert.ok(Number(requeued.last_error!.wal_bytes_behind) > 0);

      await onStandby`SELECT pg_wal_replay_resume()`;
      resumed = true;
      const final = await waitForFinalExport(sql, id, 120_000);
      assert.equal(final.status, 'complete', JSON.stringify(final.errors));
      assert.ok(final.attempts >= 2);
      assert.ok(final.number_of_rows! < seeded.rows, 'the moved device is not in the file');
      await assertPrimaryData(id);
    } finally {
      if (!resumed) await onStandby`SELECT pg_wal_replay_resume()`.catch(() => undefined);
    }
  });

  test('a stopped standby: export_database_unavailable, retried, and the export completes once it is back', async () => {
    await standbyCaughtUp();
    await onStandby.end();
    await standby.stop();
    let started = false;
    try {
      const id = await insertExport(sql, seeded.user.id, seeded.queryId);
      const requeued = await waitForExport(sql, id, (row) => row.status === 'queued' && row.attempts >= 1, 60_000);
      assert.equal(requeued.last_error!.code, 'export_database_unavailable');
      assert.match(requeued.last_error!.message, /EXPORT_DATABASE_URL/);

      await standby.start();
      started = true;
      const final = await waitForFinalExport(sql, id, 120_000);
      assert.equal(final.status, 'complete', JSON.stringify(final.errors));
      assert.ok(final.attempts >= 2);
      await assertPrimaryData(id);
    } finally {
      if (!started) await standby.start().catch(() => undefined);
    }
  });
});
