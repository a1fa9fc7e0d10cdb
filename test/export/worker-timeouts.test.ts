import assert from 'node:assert/strict';
import { test } from 'node:test';
import type postgres from 'postgres';
import { createTestDatabase } from '../support/database';
import { insertExport, seedCustomerReadings } from '../support/fixtures';
import { createTestBucket } from '../support/s3';
import { copyBackends, readExport, waitForExport, waitForFinalExport } from '../support/export-rows';
import { startTestWorker } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * The worker's control connections (claims, heartbeats, completions) cannot be held for ever by
 * an operator's row lock: their statements and lock waits time out, and an export whose heartbeat
 * cannot be written for longer than EXPORT_HEARTBEAT_TIMEOUT_S is given up, then rescued.
 */

const database = await createTestDatabase();
const bucket = await createTestBucket();
const { sql } = database;
// EXPORT_HEARTBEAT_TIMEOUT_S=2 (the test default): statements end after 2 s, lock waits after 1 s.
// No slicing: its planner estimate would wait behind the table lock below before the COPY does.
const worker = await startTestWorker(database, bucket, { EXPORT_SLICE_ROWS: '0' });

const { user, queryId, rows } = await seedCustomerReadings(sql, 2, 2);

test('the control pool sessions carry a statement timeout and a lock timeout', async () => {
  const { rows: settings } = await worker.pool.query<{ statement_timeout: string; lock_timeout: string }>(
    `SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('lock_timeout') AS lock_timeout`,
  );
  assert.deepEqual(settings[0], { statement_timeout: '2s', lock_timeout: '1s' });
});

test('a row lock held by an operator: the heartbeat gives the export up (COPY stopped), and it runs again once the lock goes', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const holdLock = (statement: (tx: postgres.TransactionSql) => Promise<unknown>) => {
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const transaction = sql.begin(async (tx) => {
      await statement(tx);
      locked();
      await held;
    });
    return { isLocked, transaction };
  };
  // The COPY waits behind a table lock, so that the export stays running however fast the
  // machine; what is tested is the other lock.
  const table = holdLock((tx) => tx`LOCK TABLE device_readings IN ACCESS EXCLUSIVE MODE`);
  await table.isLocked;
  const id = await insertExport(sql, user.id, queryId);
  await waitForExport(sql, id, (row) => row.status === 'running', 30_000);
  await waitFor(async () => ((await copyBackends(database)) === 1 ? true : undefined), 10_000, 'the COPY to wait');
  // What an operator's `BEGIN; SELECT ... FOR UPDATE;` left open does.
  const row = holdLock((tx) => tx`SELECT 1 FROM analytics_exports WHERE id = ${id} FOR UPDATE`);
  try {
    await row.isLocked;
    const lockedAt = Date.now();
    await waitFor(
      async () => ((await copyBackends(database)) === 0 ? true : undefined),
      10_000,
      'the COPY to stop while the lock is held',
      50,
    );
    t.diagnostic(`COPY stopped ${Date.now() - lockedAt} ms after the lock was taken`);
    // Nothing could be written meanwhile: the attempt was given up, not completed.
    const during = await readExport(sql, id);
    assert.equal(during!.status, 'running');
    assert.equal(during!.attempts, 1);
  } finally {
    release();
    await Promise.all([table.transaction, row.transaction]);
  }
  const final = await waitForFinalExport(sql, id, 90_000);
  assert.equal(final.status, 'complete', JSON.stringify(final));
  assert.equal(final.attempts, 2, 'the given-up attempt was rescued and run again');
  assert.equal(final.number_of_rows, rows);
});
