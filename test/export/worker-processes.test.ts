import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createTestDatabase } from '../support/database';
import { createQuery, insertExport, seedCustomerReadings } from '../support/fixtures';
import { createTestBucket, startPacedS3Relay } from '../support/s3';
import { copyBackends, readExport, waitForExport, waitForFinalExport } from '../support/export-rows';
import { spawnWorker, waitForLog, workerEnvironment } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * Real worker processes (bin/service with ROLE=worker) on one database:
 * killed with SIGKILL mid-export, stopped with SIGTERM, and many of them sharing 200 exports.
 */

const database = await createTestDatabase();
const { sql } = database;
const bucket = await createTestBucket();

// Long enough to kill mid-way: 4 devices x 2 metrics x 45 days of minutes = 518,400 rows (~50 MB).
const { user, deviceIds, queryId: bigQuery, rows: bigRows } = await seedCustomerReadings(sql, 4, 45);
const environment = (overrides: Record<string, string> = {}) => workerEnvironment(database, bucket, { LOG_LEVEL: 'info', ...overrides });
// The tests that stop a worker mid-export must see it running with bytes written (a heartbeat, every
// 667 ms here) before it ends: a worker that streams the 50 MB in under a second would finish
// first. Through this relay each of its 10 parts waits 500 ms, so the export takes seconds.
const relay = await startPacedS3Relay(bucket.config.endpoint!, 500);
const slowUploads = (overrides: Record<string, string> = {}) => environment({ S3_ENDPOINT: relay.endpoint, ...overrides });

async function objectsOf(exportId: string): Promise<string[]> {
  const listed = await bucket.client.send(new ListObjectsV2Command({ Bucket: bucket.config.bucket, Prefix: `anx_export_${exportId}/` }));
  return (listed.Contents ?? []).map((object) => object.Key!);
}

describe('a worker killed with SIGKILL mid-export', () => {
  test('its export is rescued and run again by another worker: one object, exact counts', async () => {
    const doomed = spawnWorker(slowUploads());
    const id = await insertExport(sql, user.id, bigQuery);
    await waitForExport(sql, id, (row) => row.status === 'running' && (row.bytes_written ?? 0) > 0, 60_000);
    doomed.kill('SIGKILL');
    await doomed.exited;

    const rescuer = spawnWorker(environment());
    const rescued = await waitForLog(rescuer, (line) => line.export_id === id && /rescued/.test(String(line.msg)), 30_000);
    assert.ok(rescued);
    const final = await waitForFinalExport(sql, id, 120_000);
    assert.equal(final.status, 'complete', JSON.stringify(final));
    assert.equal(final.attempts, 2);
    assert.equal(final.last_error!.code, 'worker_lost');
    assert.equal(final.number_of_rows, bigRows, 'counts of the second run alone');
    assert.deepEqual(await objectsOf(id), [final.object_key]);
    const head = await bucket.client.send(new HeadObjectCommand({ Bucket: bucket.config.bucket, Key: final.object_key! }));
    assert.equal(head.ContentLength, final.total_bytes);
    rescuer.kill('SIGTERM');
    assert.deepEqual(await rescuer.exited, { code: 0, signal: null });
  });
});

describe('bin/service', () => {
  test("starts a worker with its memory settings (an 8 MiB young generation, a fixed heap growth, glibc's fixed mmap threshold), overridable", async () => {
    const settingsOf = async (overrides: Record<string, string>) => {
      const worker = spawnWorker(environment(overrides));
      await waitForLog(worker, (line) => line.msg === 'ready');
      const cmdline = readFileSync(`/proc/${worker.child.pid}/cmdline`, 'utf8').split('\0');
      const environ = readFileSync(`/proc/${worker.child.pid}/environ`, 'utf8').split('\0');
      worker.kill('SIGTERM');
      assert.deepEqual(await worker.exited, { code: 0, signal: null });
      return { flags: cmdline.filter((arg) => arg.startsWith('--')), malloc: environ.filter((v) => v.startsWith('MALLOC_')).sort() };
    };
    assert.deepEqual(await settingsOf({}), {
      flags: ['--max-semi-space-size=8', '--heap-growing-percent=100'],
      malloc: ['MALLOC_ARENA_MAX=2', 'MALLOC_MMAP_THRESHOLD_=131072'],
    });
    assert.deepEqual(await settingsOf({ NODE_SEMI_SPACE_MIB: '2', NODE_HEAP_GROWING_PERCENT: '50', MALLOC_ARENA_MAX: '4' }), {
      flags: ['--max-semi-space-size=2', '--heap-growing-percent=50'],
      malloc: ['MALLOC_ARENA_MAX=4', 'MALLOC_MMAP_THRESHOLD_=131072'],
    });
  });

  test("gives each role its heap settings: 8 MiB and 100% growth for a worker, 4 MiB and 50% for both in one process (npm start), V8's own for the API", async () => {
    // A `node` first on PATH that prints the flags bin/service gives it, instead of starting the service.
    const bin = mkdtempSync(path.join(os.tmpdir(), 'fake-node-'));
    try {
      writeFileSync(path.join(bin, 'node'), '#!/bin/sh\necho "$@"\n', { mode: 0o755 });
      const flagsFor = (env: Record<string, string>) =>
        execFileSync(path.resolve('bin/service'), { env: { PATH: `${bin}:${process.env.PATH}`, ...env }, encoding: 'utf8' })
          .split(' ')
          .filter((arg) => arg.startsWith('--'));
      assert.deepEqual(flagsFor({ ROLE: 'worker' }), ['--max-semi-space-size=8', '--heap-growing-percent=100']);
      assert.deepEqual(flagsFor({ ROLE: 'all' }), ['--max-semi-space-size=4', '--heap-growing-percent=50']);
      assert.deepEqual(flagsFor({}), ['--max-semi-space-size=4', '--heap-growing-percent=50'], 'ROLE defaults to all');
      assert.deepEqual(flagsFor({ ROLE: 'api' }), []);
      assert.deepEqual(flagsFor({ ROLE: 'all', NODE_SEMI_SPACE_MIB: '16' }), ['--max-semi-space-size=16', '--heap-growing-percent=50']);
      assert.deepEqual(flagsFor({ ROLE: 'worker', NODE_SEMI_SPACE_MIB: '4' }), ['--max-semi-space-size=4', '--heap-growing-percent=100']);
      assert.deepEqual(flagsFor({ ROLE: 'api', NODE_HEAP_GROWING_PERCENT: '50' }), ['--heap-growing-percent=50']);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe('SIGTERM', () => {
  test('lets a running export finish within the grace period, then the process exits 0', async () => {
    const worker = spawnWorker(slowUploads({ SHUTDOWN_GRACE_S: '60' }));
    const id = await insertExport(sql, user.id, bigQuery);
    await waitForExport(sql, id, (row) => row.status === 'running' && (row.bytes_written ?? 0) > 0, 60_000);
    worker.kill('SIGTERM');
    assert.deepEqual(await worker.exited, { code: 0, signal: null });
    const final = (await readExport(sql, id))!;
    assert.equal(final.status, 'complete');
    assert.equal(final.attempts, 1);
    assert.equal(final.number_of_rows, bigRows);
  });

  test('after the grace period, stops and re-queues the export, frees its backend and exits 0; another worker completes it', async () => {
    // No grace at all: with any, an export that is nearly done when the signal comes may finish in
    // it on a fast run, and this test is about the one that does not.
    const worker = spawnWorker(slowUploads({ SHUTDOWN_GRACE_S: '0' }));
    const id = await insertExport(sql, user.id, bigQuery);
    await waitForExport(sql, id, (row) => row.status === 'running' && (row.bytes_written ?? 0) > 0, 60_000);
    const signalled = Date.now();
    worker.kill('SIGTERM');
    assert.deepEqual(await worker.exited, { code: 0, signal: null });
    assert.ok(Date.now() - signalled < 10_000, 'exits soon after the grace period');
    const requeued = (await readExport(sql, id))!;
    assert.equal(requeued.status, 'queued');
    assert.equal(requeued.last_error!.code, 'shutdown');
    assert.equal(requeued.attempts, 0, 'a shutdown hands its attempt back');
    assert.equal(requeued.rows_written, null);
    // Postgres ends the backend when it next writes to the closed connection, or within the
    // session's client_connection_check_interval (1 s) while it computes.
    await waitFor(async () => ((await copyBackends(database)) === 0 ? true : undefined), 2000, 'the COPY backend to go', 20);

    const next = spawnWorker(environment());
    const final = await waitForFinalExport(sql, id, 120_000);
    assert.equal(final.status, 'complete');
    assert.equal(final.attempts, 1, 'the shutdown did not count');
    assert.equal(final.number_of_rows, bigRows);
    assert.deepEqual(await objectsOf(id), [final.object_key]);
    next.kill('SIGTERM');
    await next.exited;
  });
});

describe('many workers', () => {
  test('three worker processes run 200 exports, each exactly once, all complete with exact counts', async () => {
    const small = await createQuery(sql, user.id, {
      metrics: ['temperature'],
      devices: [deviceIds[0]!],
      start: '2026-01-01T00:00:00Z',
      end: '2026-01-01T01:00:00Z',
    });
    const workers = [1, 2, 3].map(() => spawnWorker(environment({ WORKER_CONCURRENCY: '4' })));
    // All three take jobs before there are any, so that the work is shared.
    await Promise.all(workers.map((worker) => waitForLog(worker, (line) => line.msg === 'ready', 60_000)));
    const ids = await sql.begin(async (tx) => {
      const created: string[] = [];
      for (let i = 0; i < 200; i++) created.push(await insertExport(tx, user.id, small));
      return created;
    });
    await waitFor(
      async () => {
        const [row] = await sql<
          { n: number }[]
        >`SELECT count(*)::int AS n FROM analytics_exports WHERE id = ANY (${ids}::uuid[]) AND status IN ('complete', 'failed')`;
        return row!.n === ids.length ? true : undefined;
      },
      120_000,
      'all 200 exports to finish',
      200,
    );
    const rows = await sql<{ status: string; attempts: number; number_of_rows: string }[]>`
      SELECT status, attempts, number_of_rows FROM analytics_exports WHERE id = ANY (${ids}::uuid[])`;
    assert.ok(rows.every((row) => row.status === 'complete' && row.attempts === 1 && Number(row.number_of_rows) === 60));
    // Stopped first, so that every line they logged has been read.
    for (const worker of workers) worker.kill('SIGTERM');
    for (const worker of workers) assert.deepEqual(await worker.exited, { code: 0, signal: null });
    const runs = workers.flatMap((worker) =>
      worker.logs.filter((line) => line.msg === 'export complete').map((line) => String(line.export_id)),
    );
    assert.equal(runs.length, 200, 'one run per export across all workers');
    assert.deepEqual(new Set(runs), new Set(ids));
    assert.ok(workers.filter((worker) => worker.logs.some((line) => line.msg === 'export complete')).length >= 2, 'the work was shared');
  });
});
