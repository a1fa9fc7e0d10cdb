import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, test, type TestContext } from 'node:test';
import pg from 'pg';
import { claimExport } from '../../src/db/statements/export-attempts';
import { sliceExport } from '../../src/db/statements/export-slices';
import { createExport } from '../../src/exports/create-export';
import { createTestDatabase } from '../support/database';
import { waitForFinalExport } from '../support/export-rows';
import { NO_FAIR_SHARE } from '../support/exports';
import { insertExport, seedCustomerReadings } from '../support/fixtures';
import { createTestBucket, startRefusingS3 } from '../support/s3';
import { startTestWorker } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * A sliced export counts once among the export attempts (analytics_export_attempts_total and the
 * metrics beside it), as an unsliced export's attempt does: complete when the finishing job
 * completes it, failed (or cancelled) by the slice attempt whose end failed it, however many
 * slices failed or were retried. The metrics are the worker's own registry, the text GET /metrics
 * serves, checked by `promtool check metrics`.
 */

const database = await createTestDatabase();
const bucket = await createTestBucket();
const { sql } = database;
// 2 devices x 2 metrics x 3 days of minutes = 17,280 rows.
const seeded = await seedCustomerReadings(sql, 2, 3);
// The planner's statistics, so that the estimate (and with it the slicing) is the real one.
await sql`ANALYZE`;
const pool = new pg.Pool({ connectionString: database.url, max: 2, allowExitOnIdle: true });
pool.on('error', () => undefined);

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).error === undefined;

type TestWorker = Awaited<ReturnType<typeof startTestWorker>>;

/** The worker's metrics as GET /metrics serves them, after `promtool check metrics` accepted them (when it is on PATH). */
async function scrape(t: TestContext, worker: TestWorker): Promise<string> {
  const text = await worker.context.metrics.registry.metrics();
  if (promtool) {
    const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(run.status, 0, `promtool check metrics: ${run.stdout}${run.stderr}`);
  } else {
    t.diagnostic('promtool is not on PATH: `promtool check metrics` NOT run');
  }
  return text;
}

/**
 * A sample's value, by its exact series (name and labels as exported); 0 when it is not exported
 * yet (a labelled histogram has no series before its first observation).
 */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** What these series grew by between two scrapes. */
function growth(before: string, now: string, series: string[]): Record<string, number> {
  return Object.fromEntries(series.map((s) => [s, sample(now, s) - sample(before, s)]));
}

const attempts = (outcome: string) => `analytics_export_attempts_total{outcome="${outcome}"}`;
const sliceAttempts = (outcome: string) => `analytics_export_slice_attempts_total{outcome="${outcome}"}`;
const OUTCOMES = ['complete', 'failed', 'cancelled', 'retry', 'requeued', 'lost'];

/** Waits until the worker has counted an export attempt that ended with `outcome`. */
async function exportCounted(worker: TestWorker, outcome: string): Promise<void> {
  await waitFor(
    async () => (sample(await worker.context.metrics.registry.metrics(), attempts(outcome)) >= 1 ? true : undefined),
    30_000,
    'the export counted',
  );
}

/** How the export attempts grew between two scrapes: exactly one of `outcome`, none of the others. */
function assertCountedOnce(before: string, now: string, outcome: string): void {
  assert.deepEqual(
    growth(before, now, OUTCOMES.map(attempts)),
    Object.fromEntries(OUTCOMES.map((o) => [attempts(o), o === outcome ? 1 : 0])),
  );
}

/** The export's attempt as the export row times it: claim to end, and due date to claim. */
async function exportTimes(id: string): Promise<{ duration: number; queued: number }> {
  const [row] = await sql<{ duration: number; queued: number }[]>`
    SELECT extract(epoch FROM finished - started)::float8 AS duration, extract(epoch FROM started - run_at)::float8 AS queued
      FROM analytics_exports WHERE id = ${id}`;
  return row!;
}

test('a sliced export that completes adds 1 to the complete export attempts, with its duration, size and queue wait; its rows count once', async (t) => {
  const worker = await startTestWorker(database, bucket, { EXPORT_SLICE_ROWS: '2000', WORKER_CONCURRENCY: '2' });
  try {
    const before = await scrape(t, worker);
    const id = await insertExport(sql, seeded.user.id, seeded.queryId, { customerScopes: [seeded.customerId] });
    const final = await waitForFinalExport(sql, id, 120_000);
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    const [sliced] = await sql<{ slices: number }[]>`SELECT slices FROM analytics_exports WHERE id = ${id}`;
    assert.ok(sliced!.slices >= 2, `the export ran as ${sliced!.slices} slices`);

    // The finishing job counts the end just after its transaction commits.
    await exportCounted(worker, 'complete');
    const now = await scrape(t, worker);
    assertCountedOnce(before, now, 'complete');
    const times = await exportTimes(id);
    const grown = growth(before, now, [
      'analytics_export_duration_seconds_count{outcome="complete"}',
      'analytics_export_duration_seconds_sum{outcome="complete"}',
      'analytics_export_size_bytes_count',
      'analytics_export_size_bytes_sum',
      'analytics_export_queue_wait_seconds_count',
      'analytics_export_queue_wait_seconds_sum',
      'analytics_export_rows_total',
      'analytics_export_bytes_total',
      sliceAttempts('complete'),
    ]);
    assert.equal(grown['analytics_export_duration_seconds_count{outcome="complete"}'], 1);
    // As an unsliced attempt's: from the claim (the one that sliced it) to the completion.
    assert.ok(
      Math.abs(grown['analytics_export_duration_seconds_sum{outcome="complete"}']! - times.duration) < 0.001,
      JSON.stringify(times),
    );
    assert.equal(grown.analytics_export_size_bytes_count, 1);
    assert.equal(grown.analytics_export_size_bytes_sum, final.total_bytes);
    assert.equal(grown.analytics_export_queue_wait_seconds_count, 1);
    assert.ok(Math.abs(grown.analytics_export_queue_wait_seconds_sum! - times.queued) < 0.001, JSON.stringify(times));
    assert.equal(grown.analytics_export_rows_total, final.number_of_rows, 'its rows count once (as its slices completed)');
    assert.equal(grown.analytics_export_bytes_total, final.total_bytes);
    assert.equal(grown[sliceAttempts('complete')], sliced!.slices, 'each slice counts as a slice attempt, as before');
  } finally {
    await worker.stop();
  }
});

/**
 * A worker running three slices at once, whose storage answers every request but HeadBucket with
 * `status` (S3_MAX_ATTEMPTS=1: one request, one answer), and that holds the first request of each
 * upload: until three wait (`together`: the slices then end together, each round), or until
 * open(). Stopped (every upload let through) when the test ends, whatever its result.
 */
async function workerWithRefusingStorage(t: TestContext, status: number, code: string, release: 'together' | 'when opened') {
  const peer = await startRefusingS3(status, code);
  after(() => peer.close());
  const worker = await startTestWorker(
    database,
    { ...bucket, config: { ...bucket.config, endpoint: peer.endpoint } },
    { S3_MAX_ATTEMPTS: '1', WORKER_CONCURRENCY: '3' },
  );
  const held: Array<() => void> = [];
  let open = false;
  const openGate = () => {
    open = true;
    for (const go of held.splice(0)) go();
  };
  worker.context.s3.middlewareStack.add(
    (next, context) => async (args) => {
      if (!open && (context.commandName === 'PutObjectCommand' || context.commandName === 'CreateMultipartUploadCommand')) {
        await new Promise<void>((resolve) => {
          held.push(resolve);
          if (release === 'together' && held.length === 3) for (const go of held.splice(0)) go();
        });
      }
      return next(args);
    },
    { step: 'initialize', name: 'testHoldUploadsTogether' },
  );
  t.after(async () => {
    openGate();
    await worker.stop();
  });
  return {
    worker,
    held: () => held.length,
    /** Lets every upload through from now on. */
    open: openGate,
  };
}

/**
 * An export claimed by a worker that does not exist and divided into three day slices: the test's
 * worker runs only its slices. Its own job goes in the transaction that adds it, so that the
 * worker cannot claim it first.
 */
async function slicedInThree(maxAttempts: number): Promise<string> {
  const id = await sql.begin(async (tx) => {
    const created = await createExport(tx, {
      createdBy: seeded.user.id,
      name: 'sliced',
      notes: '',
      queryId: seeded.queryId,
      tags: [],
      customerScopes: [seeded.customerId],
      partnerScopes: [],
      maxAttempts,
    });
    await tx`DELETE FROM graphile_worker._private_jobs WHERE key = ${`analytics_export:${created.id}`}`;
    return created.id;
  });
  const claimed = await claimExport(pool, id, 'slicer', NO_FAIR_SHARE);
  assert.ok(claimed && 'claimed' in claimed);
  assert.equal(await sliceExport(pool, claimed.claimed, ['2026-01-02T00:00:00+00:00', '2026-01-03T00:00:00+00:00']), true);
  return id;
}

async function sliceStatuses(id: string): Promise<string[]> {
  const rows = await sql<
    { status: string }[]
  >`SELECT status::text FROM analytics_export_slices WHERE export_id = ${id} ORDER BY slice_number`;
  return rows.map((row) => row.status);
}

test('a sliced export whose slices fail for good adds 1 to the failed export attempts; their retries and failures count only as slice attempts', async (t) => {
  // 503 SlowDown: a transient fault, retried on the slice; at its second attempt (the last) each slice fails storage_error.
  const storage = await workerWithRefusingStorage(t, 503, 'SlowDown', 'together');
  const { worker } = storage;
  const before = await scrape(t, worker);
  const id = await slicedInThree(2);
  const final = await waitForFinalExport(sql, id, 120_000);
  assert.equal(final.status, 'failed');
  assert.equal(final.errors!.code, 'storage_error');
  assert.deepEqual(await sliceStatuses(id), ['failed', 'failed', 'failed']);

  // Every slice attempt has been counted (3 retried, then 3 ended): the export's end with them.
  await waitFor(
    async () => {
      const text = await worker.context.metrics.registry.metrics();
      const slices =
        sample(text, sliceAttempts('retry')) + sample(text, sliceAttempts('failed')) + sample(text, sliceAttempts('cancelled'));
      return slices === 6 && sample(text, attempts('failed')) >= 1 ? true : undefined;
    },
    30_000,
    'six slice attempts and the export counted',
  );
  const now = await scrape(t, worker);
  assertCountedOnce(before, now, 'failed');
  const slices = growth(before, now, [sliceAttempts('retry'), sliceAttempts('failed'), sliceAttempts('cancelled')]);
  assert.equal(slices[sliceAttempts('retry')], 3, "each slice's transient fault retried the slice");
  assert.ok(slices[sliceAttempts('failed')]! >= 1, JSON.stringify(slices));
  assert.equal(
    slices[sliceAttempts('failed')]! + slices[sliceAttempts('cancelled')]!,
    3,
    'then every slice failed (or was stopped by another failing)',
  );
  const times = await exportTimes(id);
  const grown = growth(before, now, [
    'analytics_export_errors_total{code="storage_error"}',
    'analytics_export_duration_seconds_count{outcome="failed"}',
    'analytics_export_duration_seconds_sum{outcome="failed"}',
    'analytics_export_queue_wait_seconds_count',
    'analytics_export_size_bytes_count',
  ]);
  assert.equal(grown['analytics_export_errors_total{code="storage_error"}'], 1, "the export's error, once");
  assert.equal(grown['analytics_export_duration_seconds_count{outcome="failed"}'], 1);
  assert.ok(Math.abs(grown['analytics_export_duration_seconds_sum{outcome="failed"}']! - times.duration) < 0.001, JSON.stringify(times));
  assert.equal(grown.analytics_export_queue_wait_seconds_count, 1);
  assert.equal(grown.analytics_export_size_bytes_count, 0);
});

test('a sliced export cancelled while its slices run adds 1 to the cancelled export attempts, none to the failed', async (t) => {
  const storage = await workerWithRefusingStorage(t, 503, 'SlowDown', 'when opened');
  const { worker } = storage;
  const before = await scrape(t, worker);
  const id = await slicedInThree(2);
  // Every slice running, its upload held: cancel.
  await waitFor(() => (storage.held() === 3 ? true : undefined), 60_000, 'three uploads held');
  await sql`SELECT cancel_export(${id})`;
  storage.open();
  const final = await waitForFinalExport(sql, id, 60_000);
  assert.equal(final.status, 'failed');
  assert.equal(final.errors!.code, 'cancelled');

  await exportCounted(worker, 'cancelled');
  const now = await scrape(t, worker);
  assertCountedOnce(before, now, 'cancelled');
  assert.equal(
    growth(before, now, ['analytics_export_errors_total{code="cancelled"}'])['analytics_export_errors_total{code="cancelled"}'],
    1,
  );
});
