import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { failSlice, recordSliceProgress, type SliceClaim } from '../../src/db/statements/export-slices';
import { compileExportQuery } from '../../src/exports/load-export-query';
import { createTestApi } from '../support/api';
import { directCopy, readExport, waitForFinalExport } from '../support/export-rows';
import { type SlicedByHand, sliceInThreeByHand } from '../support/exports';
import { insertExport, seedCustomerReadings } from '../support/fixtures';
import { getObject, objectsOf } from '../support/objects';
import { startPacedS3Relay } from '../support/s3';
import { startTestWorker } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * Sliced exports when something is lost or fails: a slice's job or the finishing job deleted
 * from graphile-worker's tables (as an operator or a crash would) is added again by the
 * rescuer's requeue_orphaned_exports, and nothing runs twice; the files of complete slices go as
 * soon as their export fails; a running sliced export's progress (GET, the operators' view) is
 * its slices'; and the metrics count slices. One in-process worker (one slice at a time) writes
 * through a relay that holds every PUT, so each slice takes a predictable while.
 */

const api = await createTestApi();
const { sql } = api.db;
// 2 devices x 2 metrics x 3 days of minutes = 17,280 rows, cut by hand into three day slices.
const seeded = await seedCustomerReadings(sql, 2, 3);
const relay = await startPacedS3Relay(api.bucket.config.endpoint!, 1500);
const pool = new pg.Pool({ connectionString: api.db.url, max: 2, allowExitOnIdle: true });
pool.on('error', () => undefined);
const bucket = api.bucket.config.bucket;

/** The file's worker: started by the first test, once the jobs it must not see are gone. */
let worker: Awaited<ReturnType<typeof startTestWorker>> | undefined;
const startWorker = async () =>
  (worker ??= await startTestWorker(
    api.db,
    { ...api.bucket, config: { ...api.bucket.config, endpoint: relay.endpoint } },
    { EXPORT_SLICE_ROWS: '0', WORKER_CONCURRENCY: '1' },
  ));

/**
 * An export claimed by a worker that does not exist and divided into three slices, one per day.
 * Its own job goes in the transaction that adds it, so that the file's worker cannot claim it first.
 */
async function slicedByHand(): Promise<SlicedByHand> {
  const id = await sql.begin(async (tx) => {
    const inserted = await insertExport(tx, seeded.user.id, seeded.queryId, { customerScopes: [seeded.customerId] });
    await tx`DELETE FROM graphile_worker._private_jobs WHERE key = ${`analytics_export:${inserted}`}`;
    return inserted;
  });
  return sliceInThreeByHand(pool, id);
}

/** Beats for a slice the test holds, so that the worker's rescuer leaves it alone; the returned function stops. */
function keepBeating(claim: SliceClaim): () => void {
  const timer = setInterval(() => void recordSliceProgress(pool, claim, { rows: 0, bytes: 0 }).catch(() => undefined), 300);
  return () => clearInterval(timer);
}

const sliceKey = (id: string, slice: number) => `analytics_export_slice:${id}:${slice}`;

async function jobsOf(key: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`SELECT id::text FROM graphile_worker._private_jobs WHERE key = ${key}`;
  return rows.map((row) => row.id);
}

async function sliceStatuses(id: string): Promise<Array<{ status: string; attempts: number }>> {
  return [
    ...(await sql<{ status: string; attempts: number }[]>`
    SELECT status::text, attempts FROM analytics_export_slices WHERE export_id = ${id} ORDER BY slice_number`),
  ];
}

/** The export's files, downloaded in order, data rows only: what the unsliced export's COPY gives. */
async function assertFilesHoldEveryRow(id: string): Promise<void> {
  const files = await sql<{ object_key: string }[]>`
    SELECT object_key FROM analytics_export_files WHERE export_id = ${id} ORDER BY file_number`;
  assert.equal(files.length, 3, 'one file per slice');
  const dataOf = (csv: Buffer) => csv.subarray(csv.indexOf(0x0a) + 1);
  const data: Buffer[] = [];
  for (const file of files) data.push(dataOf((await getObject(api.bucket.client, bucket, file.object_key)).body));
  const unsliced = await directCopy(api.db.url, await compileExportQuery(sql, id));
  assert.ok(Buffer.concat(data).equals(dataOf(unsliced)), "the slices' files hold the unsliced export's rows");
}

test('slices whose jobs were deleted get them again from the rescuer, none twice, and the export completes', async () => {
  const sliced = await slicedByHand();
  // Slice 2 was running on a worker that died; its job and slice 3's are gone. Slice 1 keeps its job.
  await sliced.holds(2, 'dead-worker');
  await sql.begin(async (tx) => {
    // Only time can age a heartbeat or a due date: step around the trigger for this one statement.
    await tx`SET LOCAL session_replication_role = replica`;
    await tx`UPDATE analytics_export_slices SET heartbeat_at = now() - interval '10 minutes' WHERE export_id = ${sliced.id} AND slice_number = 2`;
    await tx`UPDATE analytics_export_slices SET run_at = now() - interval '1 minute' WHERE export_id = ${sliced.id}`;
  });
  await sql`DELETE FROM graphile_worker._private_jobs WHERE key IN (${sliceKey(sliced.id, 2)}, ${sliceKey(sliced.id, 3)})`;
  const slice1Job = await jobsOf(sliceKey(sliced.id, 1));
  assert.equal(slice1Job.length, 1);

  // What the rescuer calls, by hand: only the queued slice without a job gets one.
  const requeue = async () => (await sql<{ id: string }[]>`SELECT requeue_orphaned_exports(interval '10 seconds') AS id`).map((r) => r.id);
  assert.deepEqual(await requeue(), [sliced.id]);
  assert.deepEqual(await jobsOf(sliceKey(sliced.id, 1)), slice1Job, "slice 1's own job is left as it was");
  assert.equal((await jobsOf(sliceKey(sliced.id, 3))).length, 1, 'slice 3 has a job again');
  assert.deepEqual(await jobsOf(sliceKey(sliced.id, 2)), [], 'a running slice needs none: its heartbeat carries it');
  assert.deepEqual(await requeue(), [], 'every queued slice has a job now');

  // The worker's rescuers do the rest: slice 2 back to the queue (its heartbeat is stale), then run.
  await startWorker();
  const final = await waitForFinalExport(sql, sliced.id, 120_000);
  assert.equal(final.status, 'complete', JSON.stringify(final.errors));
  assert.equal(final.number_of_rows, seeded.rows);
  assert.deepEqual(
    await sliceStatuses(sliced.id),
    [
      { status: 'complete', attempts: 1 },
      { status: 'complete', attempts: 2 },
      { status: 'complete', attempts: 1 },
    ],
    'slice 2 ran again after its worker was lost, and no slice ran twice otherwise',
  );
  await assertFilesHoldEveryRow(sliced.id);
});

test('a sliced export whose finishing job was deleted is finished by the rescuer', async () => {
  await startWorker();
  // The finishing job is deleted as soon as it is added, for as long as this trigger exists.
  await sql.unsafe(`
    CREATE FUNCTION test_lose_finish_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM graphile_worker._private_jobs WHERE id = NEW.id;
      RETURN NULL;
    END $$`);
  await sql.unsafe(`
    CREATE TRIGGER test_lose_finish_jobs AFTER INSERT ON graphile_worker._private_jobs
      FOR EACH ROW WHEN (NEW.key LIKE 'analytics_export_finish:%') EXECUTE FUNCTION test_lose_finish_jobs()`);
  try {
    const sliced = await slicedByHand();
    await waitFor(
      async () => ((await sliceStatuses(sliced.id)).every((slice) => slice.status === 'complete') ? true : undefined),
      120_000,
      'every slice complete',
    );
    // Past the rescuer's limit (EXPORT_HEARTBEAT_TIMEOUT_S = 2): it has tried, and the job was lost again.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal((await readExport(sql, sliced.id))!.status, 'running', 'without its finishing job, the export waits');
    assert.deepEqual(await jobsOf(`analytics_export_finish:${sliced.id}`), []);
    await sql.unsafe('DROP TRIGGER test_lose_finish_jobs ON graphile_worker._private_jobs');

    const final = await waitForFinalExport(sql, sliced.id, 60_000);
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    assert.equal(final.number_of_rows, seeded.rows);
    assert.equal(final.attempts, 1);
    await assertFilesHoldEveryRow(sliced.id);
  } finally {
    await sql.unsafe('DROP TRIGGER IF EXISTS test_lose_finish_jobs ON graphile_worker._private_jobs');
    await sql.unsafe('DROP FUNCTION test_lose_finish_jobs()');
  }
});

for (const [how, end] of [
  ['fails', (held: SliceClaim) => failSlice(pool, held, { code: 'query_error', message: 'the test failed it' })],
  [
    'is cancelled',
    async (held: SliceClaim) => {
      await sql`SELECT cancel_export(${held.exportId})`;
      return failSlice(pool, held, { code: 'cancelled', message: 'stopped' });
    },
  ],
] as const) {
  test(`the files of complete slices are deleted as soon as their sliced export ${how}`, async () => {
    await startWorker();
    const sliced = await slicedByHand();
    const held = await sliced.holds(2, 'test-holder');
    const stopBeating = keepBeating(held);
    await waitFor(
      async () => {
        const statuses = (await sliceStatuses(sliced.id)).map((slice) => slice.status);
        return statuses[0] === 'complete' && statuses[2] === 'complete' ? true : undefined;
      },
      120_000,
      'slices 1 and 3 complete',
    );
    assert.equal((await objectsOf(api.bucket.client, bucket, sliced.id)).length, 2, 'a file for each complete slice');

    stopBeating();
    assert.ok(await end(held), 'the test held the slice');
    assert.equal((await readExport(sql, sliced.id))!.status, 'failed');
    // Well before the hourly orphan sweep (which removes only objects older than an hour).
    await waitFor(
      async () => ((await objectsOf(api.bucket.client, bucket, sliced.id)).length === 0 ? true : undefined),
      30_000,
      'the files of the failed export deleted',
    );
  });
}

test("GET of a running sliced export shows its slices' progress, growing until it completes", async () => {
  await startWorker();
  const sliced = await slicedByHand();
  const [own] = await sql<{ heartbeat_ms: number }[]>`
    SELECT (extract(epoch FROM heartbeat_at) * 1000)::float8 AS heartbeat_ms FROM analytics_exports WHERE id = ${sliced.id}`;
  const seen: Array<{ rows: number; bytes: number; heartbeat: string }> = [];
  const viewRows: number[] = [];
  for (;;) {
    const response = await api.request('GET', `/analytics/exports/${sliced.id}/`, { key: seeded.user.apiKey });
    assert.equal(response.status, 200);
    const body = response.body as { status: string; progress?: { rows: number; bytes: number; heartbeat: string } };
    if (body.status !== 'running') {
      assert.equal(body.status, 'complete');
      break;
    }
    seen.push(body.progress!);
    const [view] = await sql<{ rows_written: number }[]>`
      SELECT rows_written::float8 AS rows_written FROM analytics_export_jobs WHERE id = ${sliced.id}`;
    viewRows.push(view!.rows_written);
  }
  const rows = seen.map((progress) => progress.rows);
  const distinct = [...new Set(rows.filter((n) => n > 0))];
  assert.ok(distinct.length >= 2, `progress grows while it runs: ${distinct.join(', ')}`);
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i]! >= rows[i - 1]!, `progress never goes back: ${rows.join(', ')}`);
  assert.ok(Math.max(...rows) <= seeded.rows);
  assert.ok(
    seen.some((progress) => progress.bytes > 0 && Date.parse(progress.heartbeat) > own!.heartbeat_ms),
    "the heartbeat is its slices' latest",
  );
  assert.ok(
    viewRows.some((n) => n > 0),
    'analytics_export_jobs shows the same progress',
  );
  assert.equal((await readExport(sql, sliced.id))!.number_of_rows, seeded.rows);
});

test('the metrics count slices: by status, the attempts this worker ended; a sliced export is not a lost heartbeat', async () => {
  const running = await startWorker();
  const sliced = await slicedByHand();
  await waitFor(
    async () => ((await sliceStatuses(sliced.id)).some((slice) => slice.status === 'running') ? true : undefined),
    60_000,
    'a slice running',
  );
  // The export's own heartbeat stopped when it was sliced: made old, it must not look like a dead worker.
  await sql.begin(async (tx) => {
    await tx`SET LOCAL session_replication_role = replica`;
    await tx`UPDATE analytics_exports SET heartbeat_at = now() - interval '10 minutes' WHERE id = ${sliced.id}`;
  });
  const value = (text: string, series: string) => {
    const match = new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
    assert.ok(match, `${series} is exported`);
    return Number(match[1]);
  };
  const scraped = (await api.request('GET', '/metrics')).text;
  assert.ok(value(scraped, 'analytics_export_heartbeat_age_seconds') < 300, "the oldest heartbeat is a running slice's");
  const [jobs] = await sql<{ heartbeat_age: number }[]>`
    SELECT extract(epoch FROM heartbeat_age)::float8 AS heartbeat_age FROM analytics_export_jobs WHERE id = ${sliced.id}`;
  assert.ok(jobs!.heartbeat_age < 300, "the operators' view, too");

  assert.equal((await waitForFinalExport(sql, sliced.id, 60_000)).status, 'complete');
  const [counts] = await sql<{ complete: number; failed: number }[]>`
    SELECT count(*) FILTER (WHERE status = 'complete')::int AS complete, count(*) FILTER (WHERE status = 'failed')::int AS failed
      FROM analytics_export_slices`;
  const after = (await api.request('GET', '/metrics')).text;
  assert.equal(value(after, 'analytics_export_slices{status="complete"}'), counts!.complete);
  assert.equal(value(after, 'analytics_export_slices{status="failed"}'), counts!.failed);
  assert.equal(value(after, 'analytics_export_slices{status="running"}'), 0);

  // This worker ran every slice of this file that completed.
  const own = await running.context.metrics.registry.metrics();
  assert.equal(value(own, 'analytics_export_slice_attempts_total{outcome="complete"}'), counts!.complete);
  assert.equal(value(own, 'analytics_export_slice_errors_total{code="query_error"}'), 0);
  assert.ok(value(own, 'analytics_export_rows_total') >= 4 * seeded.rows, 'complete slices count their rows as exported');
});
