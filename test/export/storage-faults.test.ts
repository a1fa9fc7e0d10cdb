import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { DEFAULT_ENCODING } from '../../src/exports/formats';
import { createLogger } from '../../src/logger';
import { createOpsApp } from '../../src/observability/ops-app';
import { createS3Client, retryDelayMs } from '../../src/storage/s3-client';
import { StorageError } from '../../src/storage/errors';
import { MAX_UPLOAD_PARTS, maxObjectBytes } from '../../src/storage/upload';
import { CopyQueryError, copyToObject } from '../../src/worker/copy-to-object';
import { exportEncoder } from '../../src/worker/encoders';
import { classifyFailure } from '../../src/worker/failure';
import { createTestDatabase } from '../support/database';
import { insertExport, seedCustomerReadings } from '../support/fixtures';
import { createTestBucket, paceUploadParts, startCuttableRelay, startPrivateS3, startRefusingS3 } from '../support/s3';
import { objectExists } from '../support/objects';
import { startTestWorker } from '../support/worker';
import { waitForExport, waitForFinalExport } from '../support/export-rows';

/**
 * Storage faults, against the real Postgres and s3rver (and, for the answers s3rver never gives,
 * a tiny HTTP server answering S3 requests with S3's own error bodies): refusals fail the export
 * at once with their own code, outages are ridden out, and a worker that cannot reach storage
 * takes no export.
 */

const seed = seedCustomerReadings;

// Every database and worker at the top level (see test/support/worker.ts).
const database = await createTestDatabase();
await seed(database.sql, 1, 1);
const bucket = await createTestBucket();
const copyPool = new pg.Pool({ connectionString: database.url, max: 2 });
after(() => copyPool.end());
const logger = createLogger('silent');

const peer = await startRefusingS3(403, 'InvalidAccessKeyId');
after(() => peer.close());
const refused = await createTestDatabase();
const refusedSeed = await seed(refused.sql, 1, 1);
// HeadBucket passes (the worker takes jobs), every upload is refused: a key without s3:PutObject.
await startTestWorker(refused, { ...bucket, config: { ...bucket.config, endpoint: peer.endpoint } }, { EXPORT_RETRY_DELAY_S: '0' });

const shared = await createTestDatabase();
const sharedSeed = await seed(shared.sql, 1, 1);
const dead = await startTestWorker(
  shared,
  { ...bucket, config: { ...bucket.config, endpoint: 'http://127.0.0.1:9' } },
  { WORKER_CONCURRENCY: '4' },
);
const healthy = await startTestWorker(shared, bucket, { WORKER_CONCURRENCY: '1' });

const outage = await createTestDatabase();
const privateS3 = await startPrivateS3();
const outageBucket = await createTestBucket(privateS3.endpoint);
// The worker reaches s3rver through a relay the test cuts: the outage is the network's.
const relay = await startCuttableRelay(privateS3.port);
const outageSeed = await seed(outage.sql, 3, 30);
const outageWorker = await startTestWorker(outage, { ...outageBucket, config: { ...outageBucket.config, endpoint: relay.endpoint } });
paceUploadParts(outageWorker.context.s3, 500);

/** One export's COPY into `bucketName` at `endpoint`, with the SDK's default retries; what it threw. */
async function copyFails(endpoint: string, bucketName: string, options: { maxBytes?: number } = {}): Promise<unknown> {
  const s3 = createS3Client({ ...bucket.config, endpoint, bucket: bucketName });
  try {
    await copyToObject({
      pool: copyPool,
      s3,
      bucket: bucketName,
      fileKey: () => 'faults/test.csv',
      select: `SELECT device_id, metric, ts, value FROM device_readings`,
      encoder: exportEncoder(DEFAULT_ENCODING),
      contentDisposition: () => 'attachment',
      partSizeBytes: 5 * 1024 * 1024,
      maxFileBytes: 1024 * 1024 * 1024,
      queueSize: 1,
      signal: new AbortController().signal,
      logger,
      ...options,
    });
  } catch (error) {
    return error;
  } finally {
    s3.destroy();
  }
  assert.fail('the copy succeeded');
}

describe('storage errors are classified: refusals are final, the rest is retried', async () => {
  test('a missing bucket (s3rver: 404 NoSuchBucket) is storage_misconfigured, not retried', async () => {
    const error = await copyFails(bucket.config.endpoint!, 'no-such-bucket-at-all');
    assert.ok(error instanceof StorageError, String(error));
    const failure = classifyFailure(error);
    assert.equal(failure.retry, false);
    assert.equal(failure.errors.code, 'storage_misconfigured');
    assert.equal(failure.errors.http_status, 404);
    assert.equal(failure.errors.error, 'NoSuchBucket');
    assert.match(failure.errors.message, /^the storage refused the request \(404 NoSuchBucket\): /);
  });

  for (const [status, code, expected] of [
    [403, 'AccessDenied', 'storage_denied'],
    [403, 'InvalidAccessKeyId', 'storage_denied'],
    [403, 'SignatureDoesNotMatch', 'storage_denied'],
    [400, 'InvalidRequest', 'storage_misconfigured'],
  ] as const) {
    test(`${status} ${code} is ${expected}, not retried`, async () => {
      const peer = await startRefusingS3(status, code);
      try {
        const failure = classifyFailure(await copyFails(peer.endpoint, 'exports'));
        assert.deepEqual(
          { retry: failure.retry, code: failure.errors.code, http_status: failure.errors.http_status, error: failure.errors.error },
          {
            retry: false,
            code: expected,
            http_status: status,
            error: code,
          },
        );
      } finally {
        await peer.close();
      }
    });
  }

  for (const [status, code] of [
    [500, 'InternalError'],
    [503, 'SlowDown'],
    [429, 'TooManyRequests'],
    [400, 'RequestTimeout'],
  ] as const) {
    test(`${status} ${code} is a transient storage_error, retried`, async () => {
      const peer = await startRefusingS3(status, code);
      try {
        const failure = classifyFailure(await copyFails(peer.endpoint, 'exports'));
        assert.equal(failure.retry, true);
        assert.equal(failure.errors.code, 'storage_error');
        assert.equal(failure.errors.http_status, status);
        // The SDK itself tried it again before giving up.
        assert.ok(peer.requests.filter((r) => r.startsWith('PUT')).length > 1, peer.requests.join(', '));
      } finally {
        await peer.close();
      }
    });
  }

  test('a refused connection is a transient storage_error', async () => {
    const failure = classifyFailure(await copyFails('http://127.0.0.1:9', 'exports'));
    assert.equal(failure.retry, true);
    assert.equal(failure.errors.code, 'storage_error');
    assert.match(failure.errors.message, /ECONNREFUSED/);
  });

  test("lib-storage's own refusal of more than 10,000 parts is too_large, not retried", () => {
    const failure = classifyFailure(new StorageError(new Error('Exceeded 10000 parts in multipart upload to Bucket: b Key: k.')));
    assert.equal(failure.retry, false);
    assert.equal(failure.errors.code, 'too_large');
    assert.match(failure.errors.message, /EXPORT_PART_SIZE_MIB/);
  });
});

describe('the 10,000-part ceiling', () => {
  test('is part size x 10,000: about 48.8 GiB at the default 5 MiB parts', () => {
    assert.equal(MAX_UPLOAD_PARTS, 10_000);
    assert.equal(maxObjectBytes(5 * 1024 * 1024), 52_428_800_000);
    assert.equal((maxObjectBytes(5 * 1024 * 1024) / 1024 ** 3).toFixed(1), '48.8');
    assert.equal(maxObjectBytes(512 * 1024 * 1024), 5_368_709_120_000);
  });

  test('a CSV that outgrows it stops the COPY with too_large, before the upload completes, and leaves no object', async () => {
    const error = await copyFails(bucket.config.endpoint!, bucket.config.bucket, { maxBytes: 10_000 });
    const failure = classifyFailure(error);
    assert.equal(failure.retry, false);
    assert.equal(failure.errors.code, 'too_large');
    assert.equal(failure.errors.max_bytes, 10_000);
    assert.match(failure.errors.message, /larger than one upload can hold .*EXPORT_PART_SIZE_MIB/);
    assert.equal(await objectExists(bucket.client, bucket.config.bucket, 'faults/test.csv'), false);
  });
});

describe('statement timeouts are told by SQLSTATE, whatever the language of the message', () => {
  test('a COPY cancelled by statement_timeout (57014) with a German message is timeout, final', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    let error: unknown;
    try {
      await client.query(`SET statement_timeout = 50`);
      await client.query(`SELECT pg_sleep(1)`);
    } catch (caught) {
      error = caught;
    } finally {
      await client.end();
    }
    assert.ok(error instanceof pg.DatabaseError);
    assert.equal(error.code, '57014');
    // What a server with lc_messages = 'de_DE' says instead.
    error.message = 'storniere Anfrage wegen Zeitüberschreitung der Anweisung';
    const failure = classifyFailure(new CopyQueryError(error));
    assert.equal(failure.retry, false);
    assert.equal(failure.errors.code, 'timeout');
    assert.equal(failure.errors.sqlstate, '57014');
    assert.equal(failure.errors.message, 'storniere Anfrage wegen Zeitüberschreitung der Anweisung');
  });

  test("a Postgres error of the worker's own statements (not the COPY) is retried as internal", () => {
    const lockTimeout = Object.assign(new pg.DatabaseError('Sperrzeitüberschreitung', 0, 'error'), { code: '55P03' });
    assert.deepEqual(classifyFailure(lockTimeout), { retry: true, errors: { code: 'internal', message: 'Sperrzeitüberschreitung' } });
  });
});

describe('a worker whose storage refuses for good fails the export at once', () => {
  const { user, queryId } = refusedSeed;
  test('403 InvalidAccessKeyId: failed storage_denied after one attempt, the COPY not run again', async () => {
    const id = await insertExport(refused.sql, user.id, queryId);
    const final = await waitForFinalExport(refused.sql, id, 30_000);
    assert.equal(final.status, 'failed');
    assert.equal(final.attempts, 1);
    assert.equal(final.errors!.code, 'storage_denied');
    assert.equal(final.errors!.error, 'InvalidAccessKeyId');
    assert.equal(final.errors!.http_status, 403);
  });
});

describe('a worker that cannot reach storage takes no export', () => {
  const { user, queryId } = sharedSeed;

  test('beside a healthy worker, every export runs on the healthy one at its first attempt; the other one says why it is not ready', async () => {
    assert.equal(dead.health().status, 'failed');
    assert.match(dead.health().error!, /storage unreachable .*not taking jobs/);
    // What its /readyz says (service.ts hands the worker's health to the HTTP side), to the loopback.
    const ready = await createOpsApp({ ...dead.context, workerHealth: dead.health }).request(
      '/readyz',
      {},
      { incoming: { socket: { remoteAddress: '127.0.0.1' } } },
    );
    assert.equal(ready.status, 503);
    const body = (await ready.json()) as { checks: { worker: { status: string; error: string } } };
    assert.equal(body.checks.worker.status, 'failed');
    assert.match(body.checks.worker.error, /storage unreachable .*not taking jobs/);
    assert.deepEqual(healthy.health(), { status: 'ok', duration_ms: 0 });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await insertExport(shared.sql, user.id, queryId));
    for (const id of ids) {
      const final = await waitForFinalExport(shared.sql, id, 60_000);
      assert.equal(final.status, 'complete', JSON.stringify(final));
      // Claimed by the dead worker, it would have failed an attempt there first.
      assert.equal(final.attempts, 1, JSON.stringify(final));
      assert.equal(final.last_error, null, JSON.stringify(final));
    }
  });
});

describe('an S3 outage within an attempt is ridden out by the S3 client', () => {
  const { user, queryId, rows } = outageSeed;

  test('S3 unreachable for 4 s mid-upload: the export completes at its first attempt', async () => {
    assert.deepEqual([2, 3, 4, 5, 6, 7, 8, 9].map(retryDelayMs), [1000, 2000, 4000, 8000, 16_000, 20_000, 20_000, 20_000]);
    const id = await insertExport(outage.sql, user.id, queryId, { name: 'outage' });
    await waitForExport(outage.sql, id, (row) => row.status === 'running' && (row.bytes_written ?? 0) > 6 * 1024 * 1024, 60_000);
    relay.cut();
    await new Promise((resolve) => setTimeout(resolve, 4000));
    relay.restore();
    const final = await waitForFinalExport(outage.sql, id, 120_000);
    assert.equal(final.status, 'complete', JSON.stringify(final));
    assert.equal(final.attempts, 1, JSON.stringify(final));
    assert.equal(final.number_of_rows, rows);
  });
});
