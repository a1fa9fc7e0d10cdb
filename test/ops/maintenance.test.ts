import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { parseCrontab, type JobHelpers } from 'graphile-worker';
import { pino } from 'pino';
import { CRONTAB, createTaskList } from '../../tasks';
import { abortStaleUploadsTask } from '../../tasks/abort-stale-uploads';
import { expireExportsTask } from '../../tasks/expire-exports';
import { RunningExports } from '../../src/worker/running-exports';
import { createTestApi } from '../support/api';
import { markComplete, markFailed } from '../support/exports';
import { createCustomer, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';
import { objectExists } from '../support/objects';

/**
 * Retention and hygiene, run hourly from graphile-worker's crontab: exports older than
 * EXPORT_RETENTION_DAYS go with their files; incomplete multipart uploads older than a day are
 * aborted where the S3 server can list them (s3rver cannot: that case must do no harm).
 */

const logLines: Array<Record<string, unknown>> = [];
const api = await createTestApi({ logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) }) });
const { sql } = api.db;
const { bucket } = api;
const customerId = await createCustomer(sql, await createPartner(sql));
const user = await createUser(sql, 'customer', { customerId });
const queryId = await createQuery(sql, user.id, { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' });
const run = (task: ReturnType<typeof expireExportsTask>) => task({}, {} as JobHelpers);

async function age(id: string, days: number) {
  await sql`UPDATE analytics_exports SET created = now() - make_interval(days => ${days}) WHERE id = ${id}`;
}

describe('the crontab', () => {
  test('schedules every maintenance task hourly, and the worker registers them', () => {
    const items = parseCrontab(CRONTAB);
    assert.deepEqual(items.map((item) => item.task).sort(), ['abort_stale_uploads', 'expire_exports', 'sweep_orphaned_objects']);
    for (const item of items) {
      for (let hour = 0; hour < 24; hour++) {
        let runs = 0;
        for (let min = 0; min < 60; min++) if (item.match({ min, hour, date: 15, month: 6, dow: 3 })) runs++;
        assert.equal(runs, 1, `${item.task} once in hour ${hour}`);
      }
      assert.equal(item.options.maxAttempts, 3);
    }
    const tasks = createTaskList({
      context: api.context,
      pool: undefined as never,
      copyPool: undefined as never,
      workerId: 'test',
      running: new RunningExports(),
    });
    for (const item of items) assert.equal(typeof tasks[item.task], 'function', item.task);
  });
});

describe('expire_exports', () => {
  test('deletes final exports older than EXPORT_RETENTION_DAYS with their files; keeps newer ones and unfinished ones', async () => {
    assert.equal(api.context.config.export.retentionDays, 30);
    const oldComplete = await insertExport(sql, user.id, queryId);
    const oldKey = await markComplete(sql, bucket, oldComplete, 'a\n1\n');
    await age(oldComplete, 31);
    const oldFailed = await insertExport(sql, user.id, queryId);
    await markFailed(sql, oldFailed);
    await age(oldFailed, 45);
    const oldQueued = await insertExport(sql, user.id, queryId);
    await age(oldQueued, 60);
    const recent = await insertExport(sql, user.id, queryId);
    const recentKey = await markComplete(sql, bucket, recent, 'a\n2\n');
    await age(recent, 29);
    // A retry of the expiring failed export outlives it; only its lineage goes.
    const [retry] = await sql<{ id: string }[]>`SELECT retry_export(${oldFailed}) AS id`;

    logLines.length = 0;
    await run(expireExportsTask(api.context));

    const left = (await sql<{ id: string; retry_of: string | null }[]>`SELECT id, retry_of FROM analytics_exports`).map((row) => row.id);
    assert.ok(!left.includes(oldComplete));
    assert.ok(!left.includes(oldFailed));
    assert.ok(left.includes(oldQueued), 'an unfinished export is never expired');
    assert.ok(left.includes(recent));
    assert.ok(left.includes(retry!.id));
    assert.equal(await objectExists(bucket.client, bucket.config.bucket, oldKey), false, 'the file went with the export');
    assert.equal(await objectExists(bucket.client, bucket.config.bucket, recentKey), true);
    const logged = logLines.find((line) => line.msg === 'expired exports deleted');
    assert.equal(logged?.deleted, 2);
  });

  test('honours a shorter EXPORT_RETENTION_DAYS', async () => {
    const id = await insertExport(sql, user.id, queryId);
    await markFailed(sql, id);
    await age(id, 3);
    await run(
      expireExportsTask({ ...api.context, config: { ...api.context.config, export: { ...api.context.config.export, retentionDays: 30 } } }),
    );
    assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${id}`).length, 1);
    await run(
      expireExportsTask({ ...api.context, config: { ...api.context.config, export: { ...api.context.config.export, retentionDays: 2 } } }),
    );
    assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${id}`).length, 0);
  });
});

describe('abort_stale_uploads', () => {
  // Aborting itself needs a server that lists uploads (MinIO, AWS): not run here.
  test('on s3rver, which cannot list multipart uploads, finishes without error, says so, and leaves objects alone', async () => {
    const done = await insertExport(sql, user.id, queryId);
    const key = await markComplete(sql, bucket, done, 'a\n3\n');
    await bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.config.bucket, Key: 'unfinished.csv' }));
    logLines.length = 0;
    await run(abortStaleUploadsTask(api.context));
    assert.equal(await objectExists(bucket.client, bucket.config.bucket, key), true);
    assert.ok(
      logLines.some((line) => /does not list multipart uploads/.test(String(line.msg))),
      'says why nothing was cleaned',
    );
  });
});
