import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { parse as parseCsvText } from 'csv-parse/sync';
import { decompress as fzstdDecompress } from 'fzstd';
import { generateReadings } from '../../src/demo/readings';
import { CSV_COLUMNS } from '../../src/exports/compile-query';
import type { ExportEncoding } from '../../src/exports/formats';
import { compileExportQuery } from '../../src/exports/load-export-query';
import { ROW_GROUP_ROWS } from '../../src/worker/encoders/parquet';
import { contentDisposition } from '../../src/exports/naming';
import { createTestDatabase } from '../support/database';
import { directCopy, waitForFinalExport } from '../support/export-rows';
import { createCustomer, createDevice, createPartner, createQuery, createSpace, createUser, insertExport } from '../support/fixtures';
import { getObject } from '../support/objects';
import { createTestBucket } from '../support/s3';
import { startTestWorker } from '../support/worker';

/**
 * Every format and compression end to end: a worker runs real exports from a real Postgres into
 * a real s3rver bucket, and each file is read back with tools that did not write it: `gzip -d`,
 * `zstd -d` (where installed) and fzstd, csv-parse, JSON.parse, DuckDB for Parquet. What they
 * read is compared with the plain CSV of the same query, itself a direct COPY of its SELECT.
 */

const database = await createTestDatabase();
const { sql } = database;
const bucket = await createTestBucket();
await startTestWorker(database, bucket);
const scratch = mkdtempSync(path.join(tmpdir(), 'export-formats-'));
const duck = await (await DuckDBInstance.create(':memory:')).connect();
after(() => {
  duck.closeSync();
  rmSync(scratch, { recursive: true, force: true });
});

const customerId = await createCustomer(sql, await createPartner(sql));
const user = await createUser(sql, 'customer', { customerId });
/** Names a spreadsheet would run as formulas, and names CSV and JSON must escape. */
const FORMULA_NAMES = ['=HYPERLINK("http://x.test","click")', '+1+2', '-3', '@SUM(A1)', '\tTabbed', '\rCarriage'];
const PLAIN_NAMES = ['Meter, "north"\nwing ☃ 电表 🚀', "back\\slash ' quote", 'a=b'];
const space = await createSpace(sql, customerId, { name: '=Space' });
const devices: string[] = [];
for (const [i, name] of [...FORMULA_NAMES, ...PLAIN_NAMES].entries()) {
  devices.push(await createDevice(sql, customerId, { spaceId: i % 2 === 0 ? space : undefined, name }));
}
const day = { start: '2026-03-01T00:00:00Z', end: '2026-03-02T00:00:00Z' };
await generateReadings(sql, {
  deviceIds: devices,
  metrics: ['temperature', 'energy'],
  start: new Date(day.start),
  end: new Date(day.end),
  step: '15m',
});
// Values JSON cannot spell, and a negative zero and a negative number (never formula-guarded: not text).
await sql`
  INSERT INTO device_readings (device_id, metric, ts, value) VALUES
    (${devices[0]!}, 'illuminance', '2026-03-01T00:00:00.000001Z', 'NaN'),
    (${devices[0]!}, 'illuminance', '2026-03-01T00:01:00Z', 'Infinity'),
    (${devices[1]!}, 'illuminance', '2026-03-01T00:02:00Z', '-Infinity'),
    (${devices[1]!}, 'illuminance', '2026-03-01T00:03:00Z', '-0'),
    (${devices[2]!}, 'illuminance', '2026-03-01T00:04:00Z', -1.5e-300)`;
const queryId = await createQuery(sql, user.id, { metrics: ['temperature', 'energy', 'illuminance'], ...day });

async function runExport(encoding: Partial<ExportEncoding>, name = 'Readings, "March"') {
  const id = await insertExport(sql, user.id, queryId, { name, ...encoding });
  const final = await waitForFinalExport(sql, id, 120_000);
  assert.equal(final.status, 'complete', JSON.stringify(final.errors));
  const object = await getObject(bucket.client, bucket.config.bucket, final.object_key!);
  assert.equal(final.total_bytes, object.body.length, 'total_bytes is the size of the stored object');
  return { id, final, object, name };
}

/** The plain CSV of the query, checked against a direct COPY: the reference every format is compared with. */
const plain = await runExport({});
const plainRows: string[][] = parseCsvText(plain.object.body, { relaxQuotes: false, bom: false });
const reference = plainRows.slice(1);

function gunzip(file: Buffer): Buffer {
  const result = spawnSync('gzip', ['-dc'], { input: file, maxBuffer: 1 << 30 });
  assert.equal(result.status, 0, result.stderr.toString());
  return result.stdout;
}

const zstdCli = spawnSync('zstd', ['--version']).status === 0;

/** With fzstd (an independent decoder, always there) and the zstd command when installed; both must agree. */
function unzstd(file: Buffer): Buffer {
  const decoded = Buffer.from(fzstdDecompress(file));
  if (zstdCli) {
    const result = spawnSync('zstd', ['-dc'], { input: file, maxBuffer: 1 << 30 });
    assert.equal(result.status, 0, result.stderr.toString());
    assert.ok(result.stdout.equals(decoded), 'zstd -d and fzstd read the same file');
  }
  return decoded;
}

function assertMetadata(
  object: { contentType?: string; contentDisposition?: string },
  key: string,
  name: string,
  extension: string,
  contentType: string,
) {
  assert.equal(object.contentType, contentType);
  assert.equal(object.contentDisposition, contentDisposition(name, extension));
  assert.ok(object.contentDisposition!.includes(`.${extension}"`), `the download is named *.${extension}`);
  assert.ok(key.endsWith(`/user_${user.id}.${extension}`), key);
}

describe('csv', () => {
  test('by default is byte for byte a direct COPY with HEADER, text/csv, named .csv', async () => {
    const expected = await directCopy(database.url, await compileExportQuery(sql, plain.id));
    assert.ok(plain.object.body.equals(expected));
    assertMetadata(plain.object, plain.final.object_key!, plain.name, 'csv', 'text/csv; charset=utf-8');
    assert.deepEqual(plainRows[0], [...CSV_COLUMNS]);
    assert.equal(plain.final.number_of_rows, reference.length);
    assert.equal(reference.length, 9 * 2 * 96 + 5);
  });

  test('gzip: gzip -d gives the plain CSV; application/gzip, .csv.gz, no Content-Encoding', async () => {
    const { object, final, name } = await runExport({ compression: 'gzip' });
    assert.ok(gunzip(object.body).equals(plain.object.body));
    assertMetadata(object, final.object_key!, name, 'csv.gz', 'application/gzip');
    assert.equal(final.number_of_rows, reference.length);
    assert.ok(object.body.length < plain.object.body.length / 3, 'compressed');
  });

  test('zstd: zstd -d gives the plain CSV; application/zstd, .csv.zst', async () => {
    const { object, final, name } = await runExport({ compression: 'zstd' });
    assert.ok(unzstd(object.body).equals(plain.object.body));
    assertMetadata(object, final.object_key!, name, 'csv.zst', 'application/zstd');
    assert.equal(final.number_of_rows, reference.length);
  });

  test('formula_guard: text cells starting with = + - @ tab or CR get a leading quote; nothing else changes', async () => {
    const { object, final } = await runExport({ formulaGuard: true });
    const rows: string[][] = parseCsvText(object.body, { relaxQuotes: false });
    assert.deepEqual(rows[0], [...CSV_COLUMNS]);
    assert.equal(rows.length - 1, reference.length);
    assert.equal(final.number_of_rows, reference.length);
    const risky = /^[=+\-@\t\r]/;
    const guard = (cell: string) => (risky.test(cell) ? `'${cell}` : cell);
    const TEXT_COLUMNS = new Set([2, 4, 5]);
    let guarded = 0;
    for (const [i, row] of rows.slice(1).entries()) {
      const original = reference[i]!;
      assert.deepEqual(
        row,
        original.map((cell, column) => (TEXT_COLUMNS.has(column) ? guard(cell) : cell)),
      );
      if (row[2] !== original[2]) guarded++;
    }
    assert.ok(guarded > 0, 'some device names were guarded');
    assert.ok(
      rows.some((row) => row[6]!.startsWith('-')),
      'a negative value is a number, not a formula: left as it is',
    );
    assert.ok(rows.some((row) => row[4] === "'=Space"));
  });
});

/** The reference row as the JSON object jsonl must hold. */
function expectedJson(row: string[]) {
  const value = Number(row[6]);
  return {
    timestamp: row[0],
    device_id: row[1],
    device_name: row[2],
    space_id: row[3] === '' ? null : row[3],
    space_name: row[3] === '' ? null : row[4],
    metric: row[5],
    value: Number.isFinite(value) ? value : null,
  };
}

describe('jsonl', () => {
  for (const [compression, read, extension, contentType] of [
    ['none', (b: Buffer) => b, 'jsonl', 'application/jsonl'],
    ['gzip', gunzip, 'jsonl.gz', 'application/gzip'],
    ['zstd', unzstd, 'jsonl.zst', 'application/zstd'],
  ] as const) {
    test(`${compression}: one JSON object per row, the CSV's columns as keys, UTF-8, \\n line ends`, async () => {
      const { object, final, name } = await runExport({ format: 'jsonl', compression });
      assertMetadata(object, final.object_key!, name, extension, contentType);
      const text = new TextDecoder('utf-8', { fatal: true }).decode(read(object.body));
      assert.ok(text.endsWith('\n') && !text.includes('\r\n'));
      const lines = text.slice(0, -1).split('\n');
      assert.equal(lines.length, reference.length);
      assert.equal(final.number_of_rows, reference.length);
      for (const [i, line] of lines.entries()) {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        assert.deepEqual(Object.keys(parsed), [...CSV_COLUMNS]);
        assert.deepEqual(parsed, expectedJson(reference[i]!));
      }
      assert.ok(
        lines.some((line) => line.endsWith('"value":null}')),
        'NaN and infinities are null',
      );
      assert.ok(
        lines.some((line) => line.endsWith('"value":-0}')),
        'negative zero keeps its sign',
      );
    });
  }
});

/** Microseconds since the epoch of the CSV's timestamp, worked out here (not by the writer). */
function micros(timestamp: string): bigint {
  const [seconds, fraction] = timestamp.replace('Z', '').split('.');
  return BigInt(Date.parse(`${seconds}Z`)) * 1000n + BigInt(fraction!);
}

describe('parquet', () => {
  for (const [compression, codec] of [
    ['none', 'SNAPPY'],
    ['gzip', 'GZIP'],
    ['zstd', 'ZSTD'],
  ] as const) {
    test(`${compression}: DuckDB reads typed columns (${codec}) with the CSV's rows`, async () => {
      const { object, final, name } = await runExport({ format: 'parquet', compression });
      assertMetadata(object, final.object_key!, name, 'parquet', 'application/vnd.apache.parquet');
      assert.equal(final.number_of_rows, reference.length);
      const file = path.join(scratch, `${compression}.parquet`);
      writeFileSync(file, object.body);

      const types = await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`);
      assert.deepEqual(
        types.getRowObjectsJson().map((row) => [row.column_name, row.column_type]),
        [
          ['timestamp', 'TIMESTAMP WITH TIME ZONE'],
          ['device_id', 'VARCHAR'],
          ['device_name', 'VARCHAR'],
          ['space_id', 'VARCHAR'],
          ['space_name', 'VARCHAR'],
          ['metric', 'VARCHAR'],
          ['value', 'DOUBLE'],
        ],
      );
      const schema = await duck.runAndReadAll(`SELECT name, logical_type FROM parquet_schema('${file}') WHERE name = 'timestamp'`);
      assert.match(String(schema.getRowObjectsJson()[0]!.logical_type), /isAdjustedToUTC=1.*MICROS|MICROS.*isAdjustedToUTC=1/i);
      const codecs = await duck.runAndReadAll(`SELECT DISTINCT compression FROM parquet_metadata('${file}')`);
      assert.deepEqual(
        codecs.getRowObjectsJson().map((row) => row.compression),
        [codec],
      );

      const read = await duck.runAndReadAll(
        `SELECT epoch_us("timestamp") AS us, device_id, device_name, space_id, space_name, metric, value FROM read_parquet('${file}')`,
      );
      const rows = read.getRowObjects();
      assert.equal(rows.length, reference.length);
      for (const [i, row] of rows.entries()) {
        const csv = reference[i]!;
        assert.equal(row.us, micros(csv[0]!));
        assert.deepEqual(
          [row.device_id, row.device_name, row.space_id, row.space_name, row.metric],
          [csv[1], csv[2], csv[3] === '' ? null : csv[3], csv[3] === '' ? null : csv[4], csv[5]],
        );
        assert.ok(Object.is(row.value, Number(csv[6])), `value ${String(row.value)} is the CSV's ${csv[6]}`);
      }
    });
  }

  test(`a large export is written in row groups of at most ${ROW_GROUP_ROWS} rows`, async () => {
    const big = [await createDevice(sql, customerId), await createDevice(sql, customerId)];
    const span = { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-02-12T00:00:00Z') };
    const inserted = await generateReadings(sql, { deviceIds: big, metrics: ['active_power'], ...span, step: '1m' });
    const bigQuery = await createQuery(sql, user.id, {
      metrics: ['active_power'],
      devices: big,
      start: span.start.toISOString(),
      end: span.end.toISOString(),
    });
    const id = await insertExport(sql, user.id, bigQuery, { format: 'parquet', compression: 'zstd' });
    const final = await waitForFinalExport(sql, id, 180_000);
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    assert.equal(final.number_of_rows, inserted);
    const object = await getObject(bucket.client, bucket.config.bucket, final.object_key!);
    const file = path.join(scratch, 'big.parquet');
    writeFileSync(file, object.body);
    const groups = await duck.runAndReadAll(
      `SELECT row_group_id, max(row_group_num_rows) AS n FROM parquet_metadata('${file}') GROUP BY 1 ORDER BY 1`,
    );
    const sizes = groups.getRowObjects().map((row) => Number(row.n));
    const full = Math.floor(inserted / ROW_GROUP_ROWS);
    assert.ok(full >= 2, 'several row groups');
    assert.deepEqual(sizes, [...Array<number>(full).fill(ROW_GROUP_ROWS), inserted - full * ROW_GROUP_ROWS]);
    const count = await duck.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT device_id) AS devices FROM read_parquet('${file}')`);
    assert.deepEqual(count.getRowObjects()[0], { n: BigInt(inserted), devices: 2n });
  });
});

describe('the database keeps the choice', () => {
  test('a formula guard on anything but csv is refused by a CHECK', async () => {
    await assert.rejects(
      insertExport(sql, user.id, queryId, { format: 'jsonl', formulaGuard: true }),
      /analytics_exports_formula_guard_csv/,
    );
  });

  test('retry_export() retries with the same format, compression and formula guard', async () => {
    const id = await insertExport(sql, user.id, queryId, { format: 'parquet', compression: 'gzip' });
    await sql`SELECT cancel_export(${id})`;
    assert.equal((await waitForFinalExport(sql, id)).status, 'failed');
    const [row] = await sql<{ retried: string }[]>`SELECT retry_export(${id}) AS retried`;
    const retried = row!.retried;
    const [retry] = await sql<{ format: string; compression: string; formula_guard: boolean }[]>`
      SELECT format, compression, formula_guard FROM analytics_exports WHERE id = ${retried}`;
    assert.deepEqual({ ...retry }, { format: 'parquet', compression: 'gzip', formula_guard: false });
  });
});
