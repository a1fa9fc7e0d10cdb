import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { completeSlice, failSlice, recordSliceProgress } from '../../src/db/statements/export-slices';
import { deleteExport } from '../../src/exports/delete-export';
import { compileExportQuery } from '../../src/exports/load-export-query';
import { createTestApi } from '../support/api';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { directCopy, waitForFinalExport } from '../support/export-rows';
import { type SlicedByHand, sliceInThreeByHand } from '../support/exports';
import { insertExport, seedCustomerReadings } from '../support/fixtures';
import { objectsOf } from '../support/objects';
import { comparableCsvRows, readParquetRows, type ComparableRow } from '../support/parquet';
import { parseCsv } from '../support/csv';
import { createTestBucket } from '../support/s3';
import { spawnWorker, startTestWorker, workerEnvironment } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * Sliced exports: an export estimated above EXPORT_SLICE_ROWS is divided into time slices, each
 * its own job; here three real worker processes share them, and the files read back through the
 * API, concatenated, are byte for byte the unsliced export's rows. The fan-in, cancel, failure and
 * the rescue of a slice whose worker died are the database's, checked on slices held by workers
 * that do not exist.
 */

// Files are the downloads, read through their signed links; the reference is a direct COPY.
const api = await createTestApi();
const { sql } = api.db;
// 4 devices x 2 metrics x 10 days of minutes = 115,200 rows, in several slices.
const seeded = await seedCustomerReadings(sql, 4, 10);
// The planner's statistics, as a database that has been running has them. It estimates this
// export at about 21,600 rows (the device visibility functions count for a third of the devices).
await sql`ANALYZE`;
const environment = workerEnvironment(api.db, api.bucket, { EXPORT_SLICE_ROWS: '4000', WORKER_CONCURRENCY: '1', LOG_LEVEL: 'info' });
const workers = [spawnWorker(environment), spawnWorker(environment), spawnWorker(environment)];

// The database-level cases: no worker runs until the rescue test starts one.
const quiet = await createTestDatabase();
const quietBucket = await createTestBucket();
const small = await seedCustomerReadings(quiet.sql, 2, 3);
const pool = new pg.Pool({ connectionString: quiet.url, max: 2, allowExitOnIdle: true });
pool.on('error', () => undefined);

const MIB = 1024 * 1024;

async function download(url: string): Promise<Buffer> {
  const response = await fetch(url);
  assert.equal(response.status, 200, url);
  return Buffer.from(await response.arrayBuffer());
}

const dataOf = (csv: Buffer) => csv.subarray(csv.indexOf(0x0a) + 1);

interface SliceRow {
  slice_number: number;
  slices: number;
  status: string;
  attempts: number;
  error_code: string | null;
  number_of_rows: number | null;
  range_start: string;
  range_end: string;
}

function slicesOf(database: TestDatabase, id: string): Promise<SliceRow[]> {
  return database.sql<SliceRow[]>`
    SELECT slice_number, slices, status, attempts, error_code, number_of_rows::float8 AS number_of_rows,
           range_start::text, range_end::text
      FROM analytics_export_slice_jobs WHERE export_id = ${id} ORDER BY slice_number`;
}

/** An export of the quiet database, claimed by a worker that does not exist and sliced into three. */
async function slicedByHand(): Promise<SlicedByHand> {
  return sliceInThreeByHand(pool, await insertExport(quiet.sql, small.user.id, small.queryId));
}

async function exportRow(id: string) {
  const [row] = await quiet.sql<{ status: string; errors: { code: string; slice?: number } | null; slices: number | null }[]>`
    SELECT status, errors, slices FROM analytics_exports WHERE id = ${id}`;
  return row!;
}

describe('an export estimated above EXPORT_SLICE_ROWS, with three worker processes', () => {
  test('runs as time slices on several workers, and its files hold the unsliced rows byte for byte, in order', async () => {
    const id = await insertExport(sql, seeded.user.id, seeded.queryId, { customerScopes: [seeded.customerId] });
    const final = await waitForFinalExport(sql, id, 180_000);
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    assert.equal(final.attempts, 1);

    const slices = await slicesOf(api.db, id);
    assert.ok(slices.length >= 3, `${slices.length} slices`);
    assert.ok(slices.every((slice) => slice.status === 'complete' && slice.slices === slices.length));
    for (const [i, slice] of slices.entries()) {
      assert.equal(slice.slice_number, i + 1);
      if (i > 0) assert.equal(slice.range_start, slices[i - 1]!.range_end, 'the slices tile the time range');
    }
    assert.equal(
      slices.reduce((sum, slice) => sum + slice.number_of_rows!, 0),
      seeded.rows,
    );
    const ranSlices = new Set(
      workers
        .filter((worker) => worker.logs.some((line) => line.export_id === id && line.msg === 'slice complete'))
        .map((w) => w.child.pid),
    );
    assert.ok(ranSlices.size >= 2, `slices ran on ${ranSlices.size} worker processes`);

    const response = await api.request('GET', `/analytics/exports/${id}/`, { key: seeded.user.apiKey });
    assert.equal(response.status, 200);
    const body = response.body as {
      number_of_rows: number;
      total_bytes: number;
      url: string;
      files: Array<{ url: string; number_of_rows: number; total_bytes: number }>;
    };
    assert.equal(body.number_of_rows, seeded.rows);
    assert.equal(body.files.length, slices.length, 'one file per slice (each far below EXPORT_MAX_FILE_MIB)');
    const data: Buffer[] = [];
    for (const file of body.files) {
      const csv = await download(file.url);
      assert.equal(csv.length, file.total_bytes);
      assert.ok(csv.length < MIB * 1024);
      data.push(dataOf(csv));
    }
    const unsliced = await directCopy(api.db.url, await compileExportQuery(sql, id));
    assert.ok(Buffer.concat(data).equals(dataOf(unsliced)), "the slices' rows, concatenated, are the unsliced export's");
    assert.equal(
      body.total_bytes,
      body.files.reduce((sum, file) => sum + file.total_bytes, 0),
    );
    const manifest = JSON.parse((await download(body.url)).toString('utf8')) as { entries: unknown[]; meta: { record_count: number } };
    assert.equal(manifest.entries.length, slices.length);
    assert.equal(manifest.meta.record_count, seeded.rows);

    await deleteExport(sql, { s3: api.bucket.client, bucket: api.bucket.config.bucket, logger: api.context.logger }, id);
    assert.deepEqual(await objectsOf(api.bucket.client, api.bucket.config.bucket, id), []);
    assert.equal((await slicesOf(api.db, id)).length, 0, 'the slices go with their export');
  });
});

describe('a sliced export in another format', () => {
  test('is Parquet files, one per slice, each read alone by DuckDB; in order they hold the unsliced rows', async () => {
    const id = await insertExport(sql, seeded.user.id, seeded.queryId, { customerScopes: [seeded.customerId], format: 'parquet' });
    const final = await waitForFinalExport(sql, id, 180_000);
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    const slices = await slicesOf(api.db, id);
    assert.ok(slices.length >= 3, `${slices.length} slices`);

    const response = await api.request('GET', `/analytics/exports/${id}/`, { key: seeded.user.apiKey });
    assert.equal(response.status, 200);
    const body = response.body as { number_of_rows: number; files: Array<{ url: string; number_of_rows: number; total_bytes: number }> };
    assert.equal(body.number_of_rows, seeded.rows);
    assert.equal(body.files.length, slices.length);
    const rows: ComparableRow[] = [];
    for (const [i, file] of body.files.entries()) {
      assert.match(new URL(file.url).pathname, /\.parquet$/, `file ${i + 1} is named .parquet`);
      const parquet = await download(file.url);
      assert.equal(parquet.length, file.total_bytes);
      const read = await readParquetRows(parquet);
      assert.equal(read.length, file.number_of_rows, `file ${i + 1}: its rows are counted`);
      rows.push(...read);
    }
    const unsliced = await directCopy(api.db.url, await compileExportQuery(sql, id));
    assert.deepEqual(rows, comparableCsvRows(parseCsv(unsliced.toString('utf8')).slice(1)));
    await deleteExport(sql, { s3: api.bucket.client, bucket: api.bucket.config.bucket, logger: api.context.logger }, id);
  });
});

describe('the fan-in, in the database', () => {
  test('a cancel fails the queued slices at once, and the export once its running slice stops', async () => {
    const sliced = await slicedByHand();
    const running = await sliced.holds(1, 'w1');
    const [cancelled] = await quiet.sql<{ status: string }[]>`SELECT cancel_export(${sliced.id}) AS status`;
    assert.equal(cancelled!.status, 'running', 'a slice still runs');
    assert.deepEqual(
      (await slicesOf(quiet, sliced.id)).map((slice) => [slice.status, slice.error_code]),
      [
        ['running', null],
        ['failed', 'cancelled'],
        ['failed', 'cancelled'],
      ],
    );
    assert.deepEqual(await recordSliceProgress(pool, running, { rows: 1, bytes: 1 }), { cancelRequested: true });
    const ended = await failSlice(pool, running, { code: 'cancelled', message: 'stopped' });
    assert.equal(ended?.exportFailed?.errors?.code, 'cancelled', "the last slice's end says it failed the export");
    const row = await exportRow(sliced.id);
    assert.equal(row.status, 'failed');
    assert.equal(row.errors!.code, 'cancelled');
  });

  test("a slice's final failure fails the export with its errors, once no other slice runs", async () => {
    const sliced = await slicedByHand();
    const first = await sliced.holds(1, 'w1');
    const second = await sliced.holds(2, 'w2');
    assert.deepEqual(await failSlice(pool, first, { code: 'query_error', message: 'boom' }), { exportFailed: undefined });
    assert.equal((await exportRow(sliced.id)).status, 'running', 'slice 2 still runs');
    assert.deepEqual(
      (await slicesOf(quiet, sliced.id)).map((slice) => slice.status),
      ['failed', 'running', 'failed'],
    );
    assert.deepEqual(await recordSliceProgress(pool, second, { rows: 1, bytes: 1 }), { cancelRequested: true }, 'slice 2 is told to stop');
    const ended = await failSlice(pool, second, { code: 'cancelled', message: 'stopped' });
    assert.deepEqual(
      [ended?.exportFailed?.errors?.code, ended?.exportFailed?.errors?.slice],
      ['query_error', 1],
      'slice 2 ended the export',
    );
    assert.equal(await failSlice(pool, second, { code: 'cancelled', message: 'again' }), undefined, 'a slice ends once');
    const row = await exportRow(sliced.id);
    assert.deepEqual([row.status, row.errors!.code, row.errors!.slice], ['failed', 'query_error', 1]);
  });

  test('a slice that completes after another failed for good is the one whose end fails the export, and says so', async () => {
    const sliced = await slicedByHand();
    const first = await sliced.holds(1, 'w1');
    const second = await sliced.holds(2, 'w2');
    assert.deepEqual(await failSlice(pool, first, { code: 'query_error', message: 'boom' }), { exportFailed: undefined });
    const ended = await completeSlice(pool, second, [{ key: 'slice-2.csv', rows: 1, bytes: 10 }]);
    assert.equal(ended?.exportFailed?.errors?.code, 'query_error');
    assert.ok(ended!.exportFailed!.durationSeconds >= 0);
    assert.deepEqual(
      (await slicesOf(quiet, sliced.id)).map((slice) => slice.status),
      ['failed', 'complete', 'failed'],
    );
    assert.equal((await exportRow(sliced.id)).status, 'failed');
  });

  test('the status machine of a slice is enforced: a complete slice is final, a slice cannot skip running (AE001)', async () => {
    const sliced = await slicedByHand();
    await assert.rejects(
      quiet.sql`UPDATE analytics_export_slices SET status = 'complete', files = '[]', number_of_rows = 0, total_bytes = 0
                 WHERE export_id = ${sliced.id} AND slice_number = 1`,
      (error: { code?: string }) => error.code === 'AE001',
    );
  });

  test('a slice whose worker died is rescued and run again on its own; the export completes on its first attempt', async () => {
    const sliced = await slicedByHand();
    await sliced.holds(2, 'dead-worker');
    // Only time can age a heartbeat (the trigger lets no writer move it but to now()): step around it for this one statement.
    await quiet.sql.begin(async (tx) => {
      await tx`SET LOCAL session_replication_role = replica`;
      await tx`UPDATE analytics_export_slices SET heartbeat_at = now() - interval '10 minutes' WHERE export_id = ${sliced.id} AND slice_number = 2`;
    });
    await startTestWorker(quiet, quietBucket, { EXPORT_SLICE_ROWS: '0' });
    const final = await waitForFinalExport(quiet.sql, sliced.id, 120_000);
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    assert.equal(final.attempts, 1, 'the export itself ran once');
    assert.equal(final.number_of_rows, small.rows);
    const [rescued] = await quiet.sql<{ attempts: number; last_error: { code: string } }[]>`
      SELECT attempts, last_error FROM analytics_export_slices WHERE export_id = ${sliced.id} AND slice_number = 2`;
    assert.deepEqual([rescued!.attempts, rescued!.last_error.code], [2, 'worker_lost']);
    const rows = await waitFor(
      async () => {
        const [files] = await quiet.sql<
          { n: number }[]
        >`SELECT count(*)::int AS n FROM analytics_export_files WHERE export_id = ${sliced.id}`;
        return files!.n;
      },
      5_000,
      'files',
    );
    assert.equal(rows, 3);
  });
});
