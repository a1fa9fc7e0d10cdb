import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { generateReadings } from '../../src/demo/readings';
import pg from 'pg';
import { compileAnalyticsSelect, CSV_COLUMNS } from '../../src/exports/compile-query';
import { compileExportQuery } from '../../src/exports/load-export-query';
import { contentDisposition } from '../../src/exports/naming';
import { copySessionOptions } from '../../src/worker/copy-to-object';
import { parseCsv } from '../support/csv';
import { createTestDatabase } from '../support/database';
import { createCustomer, createDevice, createPartner, createQuery, createSpace, createUser, insertExport } from '../support/fixtures';
import { createTestBucket } from '../support/s3';
import { directCopy, waitForExport, waitForFinalExport } from '../support/export-rows';
import { getObject } from '../support/objects';
import { startTestWorker } from '../support/worker';

/**
 * The export job end to end, in this process: a worker runs real exports from a real Postgres
 * into a real s3rver bucket, and each file is compared byte for byte with a direct COPY of the
 * very SELECT the export compiled.
 */

const database = await createTestDatabase();
const { sql } = database;
const bucket = await createTestBucket();
const worker = await startTestWorker(database, bucket, { EXPORT_WORK_MEM_MIB: '256' });

const partnerId = await createPartner(sql);
const customerId = await createCustomer(sql, partnerId);
const otherCustomerId = await createCustomer(sql, await createPartner(sql));
const user = await createUser(sql, 'customer', { customerId });

const HOSTILE_NAMES = [
  'Meter, "north" wing',
  'line one\nline two',
  'Ünïcødé ☃ 电表 🚀',
  "quote ' back\\slash $$ ; DROP TABLE devices; --",
  '"',
];
const building = await createSpace(sql, customerId, { name: 'HQ, "main" building' });
const floor = await createSpace(sql, customerId, { parentId: building, name: 'Floor\n1' });
const room = await createSpace(sql, customerId, { parentId: floor, name: 'Room ☃' });
const devices = [
  await createDevice(sql, customerId, { spaceId: building, name: HOSTILE_NAMES[0] }),
  await createDevice(sql, customerId, { spaceId: floor, name: HOSTILE_NAMES[1] }),
  await createDevice(sql, customerId, { spaceId: room, name: HOSTILE_NAMES[2] }),
  await createDevice(sql, customerId, { spaceId: room, name: HOSTILE_NAMES[3] }),
  await createDevice(sql, customerId, { name: HOSTILE_NAMES[4] }),
];
const invisible = await createDevice(sql, otherCustomerId, { name: 'not yours' });
const day = { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-03-02T00:00:00Z') };
await generateReadings(sql, { deviceIds: [...devices, invisible], metrics: ['temperature', 'energy'], ...day, step: '5m' });

async function exportOf(definition: Parameters<typeof createQuery>[2], name?: string) {
  const queryId = await createQuery(sql, user.id, definition);
  const id = await insertExport(sql, user.id, queryId, { name });
  return { id, final: await waitForFinalExport(sql, id) };
}

describe('the COPY sessions', () => {
  test('start read-only, with the statement timeout and float digits pinned (no round trip per export)', async () => {
    const { rows } = await worker.copyPool.query<Record<string, string>>(`
      SELECT current_setting('transaction_read_only') AS read_only,
             (extract(epoch FROM current_setting('statement_timeout')::interval) * 1000)::bigint::text AS timeout_ms,
             current_setting('extra_float_digits') AS float_digits,
             current_setting('client_connection_check_interval') AS check_interval,
             current_setting('application_name') AS application_name`);
    assert.deepEqual(rows[0], {
      read_only: 'on',
      timeout_ms: String(worker.context.config.export.statementTimeoutMs),
      float_digits: '1',
      check_interval: '1s',
      application_name: 'analytics-export-copy',
    });
    await assert.rejects(worker.copyPool.query('CREATE TABLE written_by_a_copy_session (a int)'), /read-only transaction/);
  });

  test('leave out client_connection_check_interval for servers before Postgres 14, which refuse it', () => {
    assert.equal(copySessionOptions(5000, 130012), '-c statement_timeout=5000 -c default_transaction_read_only=on -c extra_float_digits=1');
    assert.match(copySessionOptions(5000, 170010), / -c client_connection_check_interval=1000$/);
  });

  test('sort the export in memory up to EXPORT_WORK_MEM_MIB, where the server default spills it to disk', async () => {
    const { rows } = await worker.copyPool.query<{ work_mem: string }>(`SELECT current_setting('work_mem') AS work_mem`);
    assert.equal(rows[0]!.work_mem, `${worker.context.config.export.workMemMiB}MB`);

    // 4 devices x 3 metrics x 7 days of minutes: 120,960 rows, tens of MB to sort.
    const bigCustomerId = await createCustomer(sql, partnerId);
    const owner = await createUser(sql, 'customer', { customerId: bigCustomerId });
    const bigDevices = [];
    for (let i = 0; i < 4; i++) bigDevices.push(await createDevice(sql, bigCustomerId));
    const metrics = ['temperature', 'energy', 'active_power'];
    const span = { start: new Date('2026-05-01T00:00:00Z'), end: new Date('2026-05-08T00:00:00Z') };
    await generateReadings(sql, { deviceIds: bigDevices, metrics, ...span, step: '1m' });
    await sql`ANALYZE device_readings`;
    const select = compileAnalyticsSelect({
      createdBy: owner.id,
      customerScopes: [],
      partnerScopes: [],
      metrics,
      devices: [],
      spaces: [],
      start: span.start.toISOString(),
      end: span.end.toISOString(),
      interval: 'raw',
      aggregation: null,
      timezone: 'UTC',
    });
    const sortMethods = async (client: pg.Pool | pg.Client) => {
      const { rows: plan } = await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${select}`);
      return [...JSON.stringify(plan[0]!['QUERY PLAN']).matchAll(/"Sort Method":"([^"]+)"/g)].map((m) => m[1]);
    };
    const plain = new pg.Client({ connectionString: database.url, options: '-c work_mem=4MB' });
    await plain.connect();
    try {
      assert.ok((await sortMethods(plain)).includes('external merge'), 'at 4 MB the sort spills: the data is large enough');
    } finally {
      await plain.end();
    }
    const inCopySession = await sortMethods(worker.copyPool);
    assert.ok(inCopySession.length > 0 && inCopySession.every((method) => method === 'quicksort'), inCopySession.join(', '));
  });
});

describe('a complete export', () => {
  test('is byte for byte a direct COPY of its SELECT, with exact counts, headers and only visible devices', async () => {
    const name = 'Export, "quoted"\nand ☃';
    const { id, final } = await exportOf(
      {
        metrics: ['temperature', 'energy'],
        spaces: [building],
        devices: [devices[4]!, invisible],
        start: day.start.toISOString(),
        end: day.end.toISOString(),
      },
      name,
    );
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    assert.match(
      final.object_key!,
      new RegExp(`^anx_export_${id}/1-[0-9a-f]{8}/user_${user.id}\\.csv$`),
      'the key of the attempt that completed it',
    );
    const object = await getObject(bucket.client, bucket.config.bucket, final.object_key!);
    const expected = await directCopy(database.url, await compileExportQuery(sql, id));
    assert.ok(object.body.equals(expected), 'the object equals a direct COPY of the same SELECT');

    const records = parseCsv(object.body.toString('utf8'));
    assert.deepEqual(records[0], [...CSV_COLUMNS]);
    const rows = records.slice(1);
    assert.equal(rows.length, 5 * 2 * 288, 'five visible devices, two metrics, a day of 5-minute readings');
    assert.equal(final.number_of_rows, rows.length);
    assert.equal(final.total_bytes, object.body.length);
    assert.equal(final.rows_written, rows.length);
    assert.deepEqual(new Set(rows.map((r) => r[2])), new Set(HOSTILE_NAMES), 'names survive the CSV intact');
    assert.ok(!rows.some((r) => r[1] === invisible), 'a device of another customer is never exported');
    assert.match(rows[0]![0]!, /^2026-03-01T00:00:00\.000000Z$/);
    const spaceNames = new Set(rows.map((r) => r[4]));
    assert.deepEqual(spaceNames, new Set(['HQ, "main" building', 'Floor\n1', 'Room ☃', '']));
    const order = rows.map((r) => `${r[0]}|${r[1]}|${r[5]}`);
    assert.deepEqual(order, [...order].sort(), 'ordered by timestamp, device, metric');

    assert.match(object.contentType!, /^text\/csv/);
    assert.equal(object.contentDisposition, contentDisposition(name));
    assert.match(object.contentDisposition!, /^attachment; filename="[^"\n]+\.csv"; filename\*=UTF-8''\S+$/);
  });

  test('of an empty result is the header alone, complete with 0 rows', async () => {
    const { final } = await exportOf({ metrics: ['illuminance'], start: day.start.toISOString(), end: day.end.toISOString() });
    assert.equal(final.status, 'complete');
    assert.equal(final.number_of_rows, 0);
    const object = await getObject(bucket.client, bucket.config.bucket, final.object_key!);
    assert.equal(object.body.toString('utf8'), `${CSV_COLUMNS.join(',')}\n`);
    assert.equal(final.total_bytes, object.body.length);
  });

  test('of several parts has exact counts, the object’s exact size, and reports progress while it runs', async () => {
    const big = [await createDevice(sql, customerId), await createDevice(sql, customerId), await createDevice(sql, customerId)];
    const month = { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-01-31T00:00:00Z') };
    const inserted = await generateReadings(sql, { deviceIds: big, metrics: ['active_power', 'illuminance'], ...month, step: '1m' });
    const queryId = await createQuery(sql, user.id, {
      metrics: ['active_power', 'illuminance'],
      devices: big,
      start: month.start.toISOString(),
      end: month.end.toISOString(),
    });
    const id = await insertExport(sql, user.id, queryId);

    const running = await waitForExport(
      sql,
      id,
      (row) => row.status !== 'queued' && (row.status !== 'running' || (row.bytes_written ?? 0) > 0),
    );
    if (running.status === 'running') {
      assert.ok(running.heartbeat_at, 'a running export has a heartbeat');
      // On a loaded machine the first progress seen may already count every row (the upload finishing).
      assert.ok(running.rows_written! > 0 && running.rows_written! <= inserted, 'rows so far are visible');
    }
    const final = await waitForFinalExport(sql, id);
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    assert.equal(final.number_of_rows, inserted);
    const object = await getObject(bucket.client, bucket.config.bucket, final.object_key!);
    assert.equal(final.total_bytes, object.body.length);
    assert.ok(object.body.length > 3 * 5 * 1024 * 1024, `more than three 5 MiB parts (${object.body.length} bytes)`);
    const expected = await directCopy(database.url, await compileExportQuery(sql, id));
    assert.equal(createHash('sha256').update(object.body).digest('hex'), createHash('sha256').update(expected).digest('hex'));
    assert.equal(object.body.toString('latin1').split('\n').length - 2, inserted);
  });
});
