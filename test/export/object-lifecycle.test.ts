import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { generateReadings } from '../../src/demo/readings';
import type { Queryable } from '../../src/db/client';
import { createExport } from '../../src/exports/create-export';
import { deleteExport } from '../../src/exports/delete-export';
import { EXPORT_PREFIX } from '../../src/exports/naming';
import { listObjectPages } from '../../src/storage/objects';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { createCustomer, createDevice, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';
import { createTestBucket } from '../support/s3';
import { getObject, objectsOf } from '../support/objects';
import { readExport, waitForExport, waitForFinalExport } from '../support/export-rows';
import { startTestWorker } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * Nothing an export writes outlives it, through a running worker, a real Postgres and a real
 * s3rver. Where a race must be hit every time, a middleware on the worker's own S3 client runs
 * the test's step at the exact moment (a PutObject about to be sent, or just answered): the
 * requests themselves still go to s3rver.
 */

const start = new Date('2026-01-01T00:00:00Z');

/** A customer, `devices` devices with `days` of 1-minute readings of two metrics, and a query over them. */
async function seed(sql: Queryable, devices: number, days: number) {
  const customerId = await createCustomer(sql, await createPartner(sql));
  const user = await createUser(sql, 'customer', { customerId });
  const deviceIds: string[] = [];
  for (let i = 0; i < devices; i++) deviceIds.push(await createDevice(sql, customerId));
  const end = new Date(start.getTime() + days * 86_400_000);
  await generateReadings(sql, { deviceIds, metrics: ['active_power', 'temperature'], start, end, step: '1m' });
  const queryId = await createQuery(sql, user.id, {
    metrics: ['active_power', 'temperature'],
    start: start.toISOString(),
    end: end.toISOString(),
  });
  return { user, queryId, deviceIds, end };
}

type Hook = (input: { Key?: string }) => Promise<void>;

/** Runs `before` when a PutObject is about to be sent and `after` once s3rver answered it. */
function onPutObject(s3: S3Client, hooks: { before?: Hook; after?: Hook }) {
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const isPut = context.commandName === 'PutObjectCommand';
      const input = args.input as { Key?: string };
      if (isPut && hooks.before) await hooks.before(input);
      const result = await next(args);
      if (isPut && hooks.after) await hooks.after(input);
      return result;
    },
    { step: 'initialize', name: 'testPutObjectHook' },
  );
}

async function allExportObjects(client: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of listObjectPages(client, bucket, EXPORT_PREFIX)) keys.push(...page.map((object) => object.key));
  return keys;
}

const idleJobs = async (database: TestDatabase, ids: string[]) => {
  const [row] = await database.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE key = ANY (${ids.map((id) => `analytics_export:${id}`)}::text[])`;
  return row!.n === 0 ? true : undefined;
};

// One database and worker per scenario, made at the top level (see test/support/worker.ts).
const many = await createTestDatabase();
const manyBucket = await createTestBucket();
const manyWorker = await startTestWorker(many, manyBucket, { WORKER_CONCURRENCY: '4' });
const late = await createTestDatabase();
const lateBucket = await createTestBucket();
const lateWorker = await startTestWorker(late, lateBucket, { EXPORT_HEARTBEAT_TIMEOUT_S: '30' });
const cancelled = await createTestDatabase();
const cancelledBucket = await createTestBucket();
const cancelledWorker = await startTestWorker(cancelled, cancelledBucket, { EXPORT_HEARTBEAT_TIMEOUT_S: '30' });
const shutdown = await createTestDatabase();
const shutdownBucket = await createTestBucket();
// Running exports get one second after stop(); the PutObject below takes three.
const shutdownWorker = await startTestWorker(shutdown, shutdownBucket, { SHUTDOWN_GRACE_S: '1' });

describe('a cancelled or deleted export leaves no file', () => {
  test('30 exports of about 3 MB, cancelled or deleted 0-2 s after they were created or while their PutObject is in flight: no object remains', async (t) => {
    const { sql } = many;
    const { user, queryId } = await seed(sql, 2, 5);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await insertExport(sql, user.id, queryId));
    const files = { s3: manyBucket.client, bucket: manyBucket.config.bucket, logger: manyWorker.context.logger };
    const stopped = new Set<string>();
    const stop = async (id: string) => {
      if (stopped.has(id)) return;
      stopped.add(id);
      // Even ones cancelled, odd ones deleted (as the API's DELETE does).
      if (ids.indexOf(id) % 2 === 0) await sql`SELECT cancel_export(${id})`;
      else await deleteExport(sql, files, id);
    };
    let putsInFlightWhenStopped = 0;
    onPutObject(manyWorker.context.s3, {
      async before(input) {
        const id = /^anx_export_([^/]+)\//.exec(input.Key ?? '')?.[1];
        if (!id) return;
        if (!stopped.has(id)) putsInFlightWhenStopped++;
        await stop(id);
        // The request is on its way while the worker hears the cancel and gives up.
        await new Promise((resolve) => setTimeout(resolve, 300));
      },
    });
    // A third are stopped at a random moment 0-2 s after they were created; the others (and
    // any of those still running by then) when their PutObject goes out.
    const timers = ids.filter((_, i) => i % 3 === 0).map((id) => setTimeout(() => void stop(id), Math.random() * 2000));
    try {
      await waitFor(() => idleJobs(many, ids), 120_000, 'every export’s job to be done');
    } finally {
      for (const timer of timers) clearTimeout(timer);
    }
    t.diagnostic(`${putsInFlightWhenStopped} exports were stopped with their PutObject in flight`);
    assert.ok(putsInFlightWhenStopped > 0, 'the race was run');
    for (const id of ids) {
      const row = await readExport(sql, id);
      assert.ok(row === undefined || row.status === 'failed', `export ${id} is ${row?.status}`);
    }
    assert.deepEqual(await allExportObjects(manyBucket.client, manyBucket.config.bucket), [], 'no file of a cancelled or deleted export');
  });
});

describe('each attempt writes its own object', () => {
  test('a rescued attempt that finishes late cannot overwrite the object the newer attempt completed with', async () => {
    const { sql } = late;
    const { user, queryId, deviceIds } = await seed(sql, 1, 1);
    const id = await insertExport(sql, user.id, queryId);
    let puts = 0;
    let answered = 0;
    let lateAttemptLanded: () => void;
    const landed = new Promise<void>((resolve) => (lateAttemptLanded = resolve));
    onPutObject(lateWorker.context.s3, {
      // Attempt 2's PutObject is answered first, attempt 1's (held back below) second.
      async after() {
        if (++answered === 2) lateAttemptLanded();
      },
      async before() {
        if (++puts !== 1) return;
        // Attempt 1 read its rows and is uploading them. More data arrives, the export is
        // rescued from attempt 1 and run again by attempt 2, which completes; only then does
        // attempt 1's PutObject go out.
        await sql`INSERT INTO device_readings (device_id, metric, ts, value) VALUES (${deviceIds[0]!}, 'temperature', ${start.toISOString()}::timestamptz + interval '30 seconds', 21.5)`;
        await sql`SELECT rescue_stale_exports(interval '0 seconds')`;
        await waitForFinalExport(sql, id, 30_000);
      },
    });
    const final = await waitForFinalExport(sql, id, 60_000);
    assert.equal(final.status, 'complete', JSON.stringify(final));
    assert.equal(final.attempts, 2);
    await landed;
    await waitFor(
      async () => ((await objectsOf(lateBucket.client, lateBucket.config.bucket, id)).length === 1 ? true : undefined),
      10_000,
      'attempt 1 to remove its object',
    );
    assert.deepEqual(await objectsOf(lateBucket.client, lateBucket.config.bucket, id), [final.object_key]);
    const object = await getObject(lateBucket.client, lateBucket.config.bucket, final.object_key!);
    assert.equal(object.body.length, final.total_bytes, 'total_bytes describes the object the export owns');
    assert.equal(object.body.toString('utf8').trimEnd().split('\n').length - 1, final.number_of_rows, 'and number_of_rows does');
    assert.match(object.body.toString('utf8'), /,21\.5\n/, 'it is attempt 2’s file, with the reading that arrived late');
  });
});

describe('a cancel that lands between the end of the upload and the completing UPDATE wins', () => {
  test('the export ends failed "cancelled" and its object is removed', async () => {
    const { sql } = cancelled;
    const { user, queryId } = await seed(sql, 1, 1);
    const id = await insertExport(sql, user.id, queryId);
    onPutObject(cancelledWorker.context.s3, {
      // The object is in the bucket; the cancel is recorded without its NOTIFY, so only the
      // completing UPDATE can see it.
      async after() {
        await sql`UPDATE analytics_exports SET cancel_requested_at = now() WHERE id = ${id}`;
      },
    });
    const final = await waitForFinalExport(sql, id, 60_000);
    assert.equal(final.status, 'failed', JSON.stringify(final));
    assert.equal(final.errors!.code, 'cancelled');
    assert.equal(final.object_key, null);
    await waitFor(
      async () => ((await objectsOf(cancelledBucket.client, cancelledBucket.config.bucket, id)).length === 0 ? true : undefined),
      10_000,
      'the object to be removed',
    );
  });
});

describe('a shutdown does not count as an attempt', () => {
  test('stopped by a shutdown on its only attempt, the export is re-queued with its attempt handed back and runs to completion within max_attempts', async () => {
    const { sql } = shutdown;
    const { user, queryId } = await seed(sql, 1, 1);
    const { id } = await createExport(sql, {
      createdBy: user.id,
      name: 'one attempt',
      notes: '',
      queryId,
      tags: [],
      customerScopes: [],
      partnerScopes: [],
      maxAttempts: 1,
    });
    let putStarted!: () => void;
    const putStartedPromise = new Promise<void>((resolve) => (putStarted = resolve));
    onPutObject(shutdownWorker.context.s3, {
      async before() {
        putStarted();
        await new Promise((resolve) => setTimeout(resolve, 3000));
      },
    });
    await putStartedPromise;
    await shutdownWorker.stop();
    const requeued = await readExport(sql, id);
    assert.equal(requeued!.status, 'queued', JSON.stringify(requeued));
    assert.equal(requeued!.attempts, 0, 'the attempt was handed back');
    assert.equal(requeued!.last_error!.code, 'shutdown');
    assert.deepEqual(
      await objectsOf(shutdownBucket.client, shutdownBucket.config.bucket, id),
      [],
      'the stopped attempt removed its object',
    );

    await startTestWorker(shutdown, shutdownBucket);
    const final = await waitForExport(sql, id, (row) => row.status === 'complete' || row.status === 'failed', 60_000);
    assert.equal(final.status, 'complete', JSON.stringify(final));
    assert.equal(final.attempts, 1);
    const [row] = await sql`SELECT max_attempts FROM analytics_exports WHERE id = ${id}`;
    assert.ok(final.attempts <= row!.max_attempts);
  });
});
