import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { CSV_COLUMNS } from '../../src/exports/compile-query';
import { compileExportQuery } from '../../src/exports/load-export-query';
import { deleteExport } from '../../src/exports/delete-export';
import { copyToObject } from '../../src/worker/copy-to-object';
import { exportEncoder } from '../../src/worker/encoders';
import { sweepOrphanedObjects } from '../../tasks/sweep-orphaned-objects';
import { createTestApi } from '../support/api';
import { parseCsv } from '../support/csv';
import { directCopy, waitForFinalExport } from '../support/export-rows';
import { seedCustomerReadings, insertExport } from '../support/fixtures';
import { getObject, objectsOf } from '../support/objects';
import { comparableCsvRows, csvMicros, readParquetRows, type ComparableRow } from '../support/parquet';
import { startTestWorker } from '../support/worker';

/**
 * Exports larger than EXPORT_MAX_FILE_MIB (here its least, 5 MiB) are written as several files,
 * each a complete CSV with its header, in row order; GET lists them in `files` and `url` is a
 * manifest of them. Each file is downloaded through its signed link and read with the strict CSV
 * parser; their data rows, concatenated, must be a direct COPY of the export's SELECT.
 */

const MIB = 1024 * 1024;
const api = await createTestApi();
const { sql } = api.db;
const { bucket } = api;
await startTestWorker(api.db, bucket, { EXPORT_MAX_FILE_MIB: '5' });
// About 110 bytes a row: some 15 MiB of CSV, three files or more.
const big = await seedCustomerReadings(sql, 4, 12);
const small = await seedCustomerReadings(sql, 1, 1);

interface ExportBody {
  status: string;
  number_of_rows: number;
  total_bytes: number;
  url: string;
  url_expires: string;
  files: Array<{ url: string; number_of_rows: number; total_bytes: number }>;
}

async function completeExport(seeded: {
  customerId: string;
  user: { id: string; apiKey: string };
  queryId: string;
}): Promise<{ id: string; body: ExportBody }> {
  const id = await insertExport(sql, seeded.user.id, seeded.queryId, { name: 'Energy, all of it', customerScopes: [seeded.customerId] });
  const final = await waitForFinalExport(sql, id, 120_000);
  assert.equal(final.status, 'complete', JSON.stringify(final.errors));
  const response = await api.request('GET', `/analytics/exports/${id}/`, { key: seeded.user.apiKey });
  assert.equal(response.status, 200, response.text);
  return { id, body: response.body as ExportBody };
}

/** A GET of the signed link, as a client makes it; tried again once if the connection drops (a loaded machine). */
async function download(url: string): Promise<{ body: Buffer; contentType: string | null; disposition: string | null }> {
  const response = await fetch(url).catch(() => fetch(url));
  assert.equal(response.status, 200, url);
  return {
    body: Buffer.from(await response.arrayBuffer()),
    contentType: response.headers.get('content-type'),
    disposition: response.headers.get('content-disposition'),
  };
}

/** The bytes after the header line. */
const dataOf = (csv: Buffer) => csv.subarray(csv.indexOf(0x0a) + 1);

const multi = await completeExport(big);
// The export's SELECT, for the tests below that copy it themselves (multi is deleted by one).
const bigSelect = await compileExportQuery(sql, multi.id);

describe('an export larger than EXPORT_MAX_FILE_MIB', () => {
  test('is several complete CSV files, each with its header, at most the limit give or take one part, in row order', async () => {
    const { body } = multi;
    assert.ok(body.files.length >= 3, `${body.files.length} files`);
    const header = `${CSV_COLUMNS.join(',')}\n`;
    const data: Buffer[] = [];
    for (const [i, file] of body.files.entries()) {
      const { body: csv, contentType, disposition } = await download(file.url);
      assert.equal(csv.length, file.total_bytes, `file ${i + 1}: total_bytes is its size`);
      assert.ok(csv.subarray(0, header.length).toString() === header, `file ${i + 1} starts with the header`);
      const records = parseCsv(csv.toString('utf8'));
      assert.deepEqual(records[0], [...CSV_COLUMNS]);
      assert.equal(records.length - 1, file.number_of_rows, `file ${i + 1}: number_of_rows is its data rows`);
      assert.ok(csv.length <= 5 * MIB + 5 * MIB, `file ${i + 1} is ${csv.length} bytes`);
      if (i < body.files.length - 1) assert.ok(csv.length >= 5 * MIB, `file ${i + 1} ended before the limit: ${csv.length} bytes`);
      assert.equal(contentType, 'text/csv; charset=utf-8');
      assert.match(disposition!, i === 0 ? /filename="Energy_ all of it\.csv"/ : /filename="Energy_ all of it\.part-0000\d\.csv"/);
      data.push(dataOf(csv));
    }
    const single = await directCopy(api.db.url, await compileExportQuery(sql, multi.id));
    assert.ok(Buffer.concat(data).equals(dataOf(single)), "the files' data rows, concatenated, are the single-file export's");
  });

  test('counts rows exactly: the export has the sums of its files, and every seeded row', () => {
    const { body } = multi;
    assert.equal(body.number_of_rows, big.rows);
    assert.equal(
      body.number_of_rows,
      body.files.reduce((sum, file) => sum + file.number_of_rows, 0),
    );
    assert.equal(
      body.total_bytes,
      body.files.reduce((sum, file) => sum + file.total_bytes, 0),
    );
  });

  test('has a url to a manifest of its files, never to part of the data', async () => {
    const { body } = multi;
    const manifest = await download(body.url);
    assert.equal(manifest.contentType, 'application/json');
    const parsed = JSON.parse(manifest.body.toString('utf8')) as {
      entries: Array<{ url: string; mandatory: boolean; meta: { content_length: number; record_count: number } }>;
      meta: { content_length: number; record_count: number };
    };
    const keys = await objectsOf(bucket.client, bucket.config.bucket, multi.id);
    const fileKeys = parsed.entries.map((entry) => entry.url.replace(`s3://${bucket.config.bucket}/`, ''));
    assert.deepEqual(
      parsed.entries.map((entry) => entry.meta),
      body.files.map((file) => ({ content_length: file.total_bytes, record_count: file.number_of_rows })),
    );
    assert.deepEqual(parsed.meta, { content_length: body.total_bytes, record_count: body.number_of_rows });
    for (const [i, key] of fileKeys.entries()) assert.ok(body.files[i]!.url.includes(`/${key}?`), `file ${i + 1} is ${key}`);
    assert.deepEqual([...fileKeys].sort(), [...fileKeys], 'sorted by key, the files are in row order');
    const manifestKey = keys.find((key) => key.endsWith('.manifest.json'));
    assert.ok(manifestKey && body.url.includes(`/${manifestKey}?`));
    assert.deepEqual(keys, [...fileKeys, manifestKey].sort(), 'the bucket holds the files and the manifest, nothing else');
  });

  test('keeps every file through the orphan sweep, and loses them all when deleted', async () => {
    const context = { ...api.context, logger: pino({ level: 'silent' }) };
    const before = await objectsOf(bucket.client, bucket.config.bucket, multi.id);
    await sweepOrphanedObjects(context, 0);
    assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, multi.id), before, 'a complete export owns all its files');
    await deleteExport(sql, { s3: bucket.client, bucket: bucket.config.bucket, logger: context.logger }, multi.id);
    assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, multi.id), []);
    const [files] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM analytics_export_files WHERE export_id = ${multi.id}`;
    assert.equal(files!.n, 0);
  });
});

/**
 * Several files in the other formats: the export's SELECT copied by copyToObject itself, with
 * files of 256 KiB (below what EXPORT_MAX_FILE_MIB allows, so that compressed output still makes
 * several), into the bucket; each file read back by tools that did not write it (`gzip -d` and
 * JSON.parse, DuckDB) and compared, row by row, with a direct COPY of the SELECT as CSV.
 */
describe('several files in jsonl+gzip and in parquet', () => {
  const FILE_BYTES = 256 * 1024;
  const copyPool = new pg.Pool({ connectionString: api.db.url, max: 1 });
  after(() => copyPool.end());

  async function copyInFiles(format: 'jsonl' | 'parquet', compression: 'gzip' | 'none') {
    const prefix = `formats-files/${format}-${compression}/`;
    const copied = await copyToObject({
      pool: copyPool,
      s3: bucket.client,
      bucket: bucket.config.bucket,
      fileKey: (fileNumber, extension) => `${prefix}${String(fileNumber).padStart(5, '0')}.${extension}`,
      select: bigSelect,
      encoder: exportEncoder({ format, compression, formulaGuard: false }),
      contentDisposition: () => 'attachment',
      partSizeBytes: 5 * MIB,
      queueSize: 1,
      maxFileBytes: FILE_BYTES,
      signal: new AbortController().signal,
      logger: pino({ level: 'silent' }),
    });
    const bodies: Buffer[] = [];
    for (const file of copied.files) bodies.push((await getObject(bucket.client, bucket.config.bucket, file.key)).body);
    return { copied, bodies };
  }

  const reference = async () => comparableCsvRows(parseCsv((await directCopy(api.db.url, bigSelect)).toString('utf8')).slice(1));

  function assertSplit(copied: { rows: number; files: Array<{ rows: number; bytes: number }> }, bodies: Buffer[]) {
    assert.ok(copied.files.length >= 3, `${copied.files.length} files`);
    assert.equal(copied.rows, big.rows);
    for (const [i, file] of copied.files.entries()) {
      assert.equal(bodies[i]!.length, file.bytes, `file ${i + 1}: its bytes are the stored object's`);
      if (i < copied.files.length - 1) assert.ok(file.bytes >= FILE_BYTES, `file ${i + 1} ended before the limit: ${file.bytes} bytes`);
      assert.ok(file.bytes <= FILE_BYTES + 5 * MIB, `file ${i + 1} is ${file.bytes} bytes`);
    }
  }

  test('jsonl+gzip: every file is a whole gzip stream of whole JSON lines; in order they are the export', async () => {
    const { copied, bodies } = await copyInFiles('jsonl', 'gzip');
    assertSplit(copied, bodies);
    const rows: ComparableRow[] = [];
    for (const [i, body] of bodies.entries()) {
      assert.ok(body.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b])), `file ${i + 1} is gzip`);
      const unzipped = spawnSync('gzip', ['-dc'], { input: body, maxBuffer: 1 << 30 });
      assert.equal(unzipped.status, 0, `gzip -d reads file ${i + 1} alone: ${unzipped.stderr.toString()}`);
      const text = unzipped.stdout.toString('utf8');
      assert.ok(text.endsWith('\n'), `file ${i + 1} ends with a whole line`);
      const lines = text.slice(0, -1).split('\n');
      assert.equal(lines.length, copied.files[i]!.rows, `file ${i + 1}: its rows are counted`);
      for (const line of lines) {
        const row = JSON.parse(line) as { timestamp: string; device_id: string; metric: string; value: number };
        rows.push([csvMicros(row.timestamp), row.device_id, row.metric, row.value]);
      }
    }
    assert.deepEqual(rows, await reference());
  });

  test('parquet: every file is a Parquet file DuckDB reads alone; in order they are the export', async () => {
    const { copied, bodies } = await copyInFiles('parquet', 'none');
    assertSplit(copied, bodies);
    const rows: ComparableRow[] = [];
    for (const [i, body] of bodies.entries()) {
      assert.ok(body.subarray(-4).equals(Buffer.from('PAR1')), `file ${i + 1} ends with the Parquet footer`);
      const read = await readParquetRows(body);
      assert.equal(read.length, copied.files[i]!.rows, `file ${i + 1}: its rows are counted`);
      rows.push(...read);
    }
    assert.deepEqual(rows, await reference());
  });
});

describe('an export smaller than EXPORT_MAX_FILE_MIB', () => {
  test('is one file: url as before, and files with that one entry', async () => {
    const { id, body } = await completeExport(small);
    assert.equal(body.files.length, 1);
    assert.equal(body.files[0]!.url, body.url);
    assert.deepEqual(
      { number_of_rows: body.files[0]!.number_of_rows, total_bytes: body.files[0]!.total_bytes },
      { number_of_rows: body.number_of_rows, total_bytes: body.total_bytes },
    );
    const keys = await objectsOf(bucket.client, bucket.config.bucket, id);
    assert.equal(keys.length, 1);
    assert.match(keys[0]!, new RegExp(`^anx_export_${id}/1-[0-9a-f]{8}/user_${small.user.id}\\.csv$`));
    const { body: csv } = await download(body.url);
    assert.ok(csv.equals(await directCopy(api.db.url, await compileExportQuery(sql, id))));
  });
});

describe('analytics_export_files', () => {
  test('takes files only from a completion, and never changes them (AE001)', async () => {
    const id = await insertExport(sql, small.user.id, small.queryId);
    await assert.rejects(
      sql`INSERT INTO analytics_export_files (export_id, file_number, object_key, number_of_rows, total_bytes)
          VALUES (${id}, 1, ${`anx_export_${id}/x.csv`}, 1, 1)`,
      (error: { code?: string }) => error.code === 'AE001',
    );
    const final = await waitForFinalExport(sql, id);
    assert.equal(final.status, 'complete');
    await assert.rejects(
      sql`UPDATE analytics_export_files SET number_of_rows = 0 WHERE export_id = ${id}`,
      (error: { code?: string }) => error.code === 'AE001',
    );
  });
});
