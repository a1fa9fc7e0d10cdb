import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { insertExport as insertExportRow } from '../../src/db/statements/exports';
import { createTestDatabase } from '../support/database';
import { markComplete } from '../support/exports';
import { createCustomerWithQuery } from '../support/fixtures';
import { createTestBucket } from '../support/s3';

/**
 * The webhook outbox in the database (drizzle/0017), with no worker running: the final status
 * and its notification (a row and its graphile-worker job) commit together or not at all.
 */

const database = await createTestDatabase();
const { sql } = database;
const bucket = await createTestBucket();
const { user, queryId, customerId } = await createCustomerWithQuery(sql);

async function newExport(notifyUrl?: string): Promise<string> {
  const row = await insertExportRow(sql, {
    createdBy: user.id,
    name: 'Outbox',
    notes: '',
    queryId,
    tags: [],
    customerScopes: [customerId],
    partnerScopes: [],
    maxAttempts: 1,
    notifyUrl,
  });
  return row.id;
}

async function notificationsOf(exportId: string) {
  return [
    ...(await sql<{ webhook_id: string; event_type: string; url: string; attempts: number; state: string; jobs: number }[]>`
    SELECT d.webhook_id, d.event_type, d.url, d.attempts, d.state,
           (SELECT count(*)::int FROM graphile_worker._private_jobs j
             WHERE j.payload ->> 'webhook_id' = d.webhook_id::text
               AND j.task_id = (SELECT t.id FROM graphile_worker._private_tasks t WHERE t.identifier = 'deliver_export_webhook')) AS jobs
      FROM analytics_export_webhook_deliveries d WHERE d.export_id = ${exportId}`),
  ];
}

class Rollback extends Error {}

describe('the webhook outbox', () => {
  test('a final status rolled back leaves no notification and no job; committed, exactly one of each', async () => {
    const id = await newExport('https://93.184.215.14/hook');
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`SELECT cancel_export(${id})`;
        assert.equal((await tx`SELECT 1 FROM analytics_export_webhooks WHERE export_id = ${id}`).length, 1, 'inside the transaction');
        throw new Rollback();
      }),
      Rollback,
    );
    assert.deepEqual(await notificationsOf(id), []);
    const [queue] = await sql<{ jobs: number }[]>`
      SELECT count(*)::int AS jobs FROM graphile_worker.jobs WHERE task_identifier = 'deliver_export_webhook'`;
    assert.equal(queue!.jobs, 0);

    await sql`SELECT cancel_export(${id})`;
    const [notification, ...more] = await notificationsOf(id);
    assert.equal(more.length, 0);
    assert.equal(notification!.event_type, 'analytics_export.failed');
    assert.equal(notification!.url, 'https://93.184.215.14/hook');
    assert.equal(notification!.state, 'pending');
    assert.equal(notification!.attempts, 0);
    assert.equal(notification!.jobs, 1, 'its delivery job');
  });

  test('a complete export is notified as analytics_export.completed; an export without notify_url is not notified', async () => {
    const notified = await newExport('https://93.184.215.14/done');
    await markComplete(sql, bucket, notified, 'a\n1\n');
    assert.deepEqual(
      (await notificationsOf(notified)).map((n) => [n.event_type, n.jobs]),
      [['analytics_export.completed', 1]],
    );
    const silent = await newExport();
    await markComplete(sql, bucket, silent, 'a\n1\n');
    assert.deepEqual(await notificationsOf(silent), []);
  });

  test('the database refuses a notify_url over 2,048 characters', async () => {
    await assert.rejects(newExport(`https://93.184.215.14/${'a'.repeat(2048)}`), /analytics_exports_notify_url_length/);
  });
});
