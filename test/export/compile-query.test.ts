import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { ExportQueryError } from '../../src/exports/compile-query';
import { compileExportQuery } from '../../src/exports/load-export-query';
import { parseCsv } from '../support/csv';
import { createTestDatabase } from '../support/database';
import { createCustomer, createDevice, createPartner, createQuery, createSpace, createUser, insertExport } from '../support/fixtures';
import { directCopy } from '../support/export-rows';

/**
 * The query compiler, with every compiled SELECT run for real through COPY: hostile strings
 * where they can reach SQL (metric names from the catalogue, time zones) and where they reach
 * the CSV (device and space names); the devices chosen (spaces with their descendants, visibility
 * when the export runs); aggregation buckets, day buckets in a time zone across a DST change.
 * No worker runs in this file.
 */

const database = await createTestDatabase();
const { sql } = database;
const partnerId = await createPartner(sql);
const customerId = await createCustomer(sql, partnerId);
const user = await createUser(sql, 'customer', { customerId });

async function exportRows(definition: Parameters<typeof createQuery>[2], createdBy = user.id): Promise<string[][]> {
  const id = await insertExport(sql, createdBy, await createQuery(sql, createdBy, definition));
  const csv = await directCopy(database.url, await compileExportQuery(sql, id));
  return parseCsv(csv.toString('utf8')).slice(1);
}

const HOSTILE_UNITS = [
  "'",
  "''",
  '\\',
  '$',
  '$$',
  ';',
  '"',
  ',',
  '\n',
  '\r',
  '\t',
  ' ',
  '-',
  '--',
  '/*',
  'E',
  'a',
  'é',
  '☃',
  '🚀',
  '电',
  '\u2028',
  '\u00a0',
];
/** Strings a careless compiler would break on; never NUL (Postgres text cannot hold it). */
const hostile = fc
  .oneof(
    fc.string({ unit: fc.constantFrom(...HOSTILE_UNITS), minLength: 1, maxLength: 20 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
    fc.constantFrom("'; DROP TABLE device_readings; --", '$$; SELECT pg_sleep(10); $$', "\\'); --", "E'\\\\x27'", '"""'),
  )
  .filter((s) => !s.includes('\0') && [...s].length <= 64 && s.trim().length > 0);

describe('hostile strings', () => {
  test('pg.escapeLiteral round-trips every string through Postgres', async () => {
    await fc.assert(
      fc.asyncProperty(hostile, async (value) => {
        const [row] = await sql.unsafe(`SELECT ${pg.escapeLiteral(value)} AS v`);
        assert.equal(row!.v, value);
      }),
      { numRuns: 200 },
    );
  });

  test('metric names from the catalogue and device and space names survive compilation, COPY and CSV', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(hostile, { minLength: 1, maxLength: 3 }),
        hostile,
        hostile,
        async (metrics, deviceName, spaceName) => {
          run++;
          const names = metrics.map((m) => `${m}#${run}`.slice(-64));
          await sql`INSERT INTO metrics (name) SELECT unnest(${names}::text[]) ON CONFLICT DO NOTHING`;
          const space = await createSpace(sql, customerId, { name: spaceName });
          const device = await createDevice(sql, customerId, { spaceId: space, name: deviceName });
          await sql`
          INSERT INTO device_readings (device_id, metric, ts, value)
          SELECT ${device}, m, '2026-05-01T00:00:00Z'::timestamptz, 1.5 FROM unnest(${names}::text[]) AS m`;
          const rows = await exportRows({ metrics: names, devices: [device], start: '2026-05-01T00:00:00Z', end: '2026-05-02T00:00:00Z' });
          assert.deepEqual(rows.map((r) => r[5]).sort(), [...names].sort());
          for (const r of rows) assert.deepEqual(r.slice(1, 5), [device, deviceName, space, spaceName]);
        },
      ),
      { numRuns: 30 },
    );
    const [tables] = await sql`SELECT count(*)::int AS n FROM pg_tables WHERE tablename IN ('device_readings', 'devices')`;
    assert.equal(tables!.n, 2, 'nothing was dropped');
  });

  test('a time zone is used only if Postgres knows it; anything else is refused before SQL', async () => {
    await fc.assert(
      fc.asyncProperty(hostile, async (timezone) => {
        const queryId = await createQuery(sql, user.id, {
          metrics: ['temperature'],
          start: '2026-05-01T00:00:00Z',
          end: '2026-05-02T00:00:00Z',
          interval: '1d',
          aggregation: 'avg',
          timezone,
        });
        const id = await insertExport(sql, user.id, queryId);
        const [known] = await sql`SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = ${timezone}) AS known`;
        if (known!.known) await directCopy(database.url, await compileExportQuery(sql, id));
        else await assert.rejects(compileExportQuery(sql, id), ExportQueryError);
      }),
      { numRuns: 50 },
    );
  });

  test('an export that does not exist, or an id that is not one, is a clear error', async () => {
    await assert.rejects(
      compileExportQuery(sql, '00000000-0000-4000-8000-000000000000'),
      /analytics export 00000000-0000-4000-8000-000000000000 does not exist/,
    );
    await assert.rejects(compileExportQuery(sql, "x'; DROP TABLE devices; --"), /does not exist/);
  });
});

describe('devices', () => {
  test('spaces include their descendants, devices add to them, and visibility is decided when the export runs', async () => {
    const building = await createSpace(sql, customerId);
    const floor = await createSpace(sql, customerId, { parentId: building });
    const room = await createSpace(sql, customerId, { parentId: floor });
    const elsewhere = await createSpace(sql, customerId);
    const inRoom = await createDevice(sql, customerId, { spaceId: room });
    const onFloor = await createDevice(sql, customerId, { spaceId: floor });
    const outside = await createDevice(sql, customerId, { spaceId: elsewhere });
    const loose = await createDevice(sql, customerId);
    const ts = '2026-06-01T00:00:00Z';
    await sql`INSERT INTO device_readings (device_id, metric, ts, value) SELECT unnest(${[inRoom, onFloor, outside, loose]}::uuid[]), 'occupancy', ${ts}, 1`;
    const definition = { metrics: ['occupancy'], start: ts, end: '2026-06-02T00:00:00Z' };

    const queryId = await createQuery(sql, user.id, { ...definition, spaces: [floor], devices: [loose] });
    const id = await insertExport(sql, user.id, queryId);
    const run = async () =>
      parseCsv((await directCopy(database.url, await compileExportQuery(sql, id))).toString('utf8'))
        .slice(1)
        .map((r) => r[1]);
    assert.deepEqual(new Set(await run()), new Set([inRoom, onFloor, loose]));

    // The device moves to another customer after the export was created: it is no longer exported.
    const other = await createCustomer(sql, await createPartner(sql));
    await sql`UPDATE devices SET customer_id = ${other} WHERE id = ${onFloor}`;
    assert.deepEqual(new Set(await run()), new Set([inRoom, loose]));

    // None named: every device the creator may see, and only those.
    const everything = new Set((await exportRows(definition)).map((r) => r[1]));
    assert.deepEqual(everything, new Set([inRoom, outside, loose]));
    const partnerUser = await createUser(sql, 'partner', { partnerId });
    assert.deepEqual(new Set((await exportRows(definition, partnerUser.id)).map((r) => r[1])), everything);
  });
});

describe('aggregation', async () => {
  const device = await createDevice(sql, customerId);
  // Hourly readings 1, 2, 3, ... from 2026-03-07 00:00 UTC to 2026-03-10 00:00 UTC, across New York's DST change (03-08).
  await sql`
    INSERT INTO device_readings (device_id, metric, ts, value)
    SELECT ${device}, 'energy', '2026-03-07T00:00:00Z'::timestamptz + (n - 1) * interval '1 hour', n FROM generate_series(1, 72) AS n`;
  const base = { metrics: ['energy'], devices: [device], start: '2026-03-07T00:00:00Z', end: '2026-03-10T00:00:00Z' };

  test('day buckets start at local midnight in the query’s time zone and are written in UTC', async () => {
    const rows = await exportRows({ ...base, interval: '1d', aggregation: 'count', timezone: 'America/New_York' });
    assert.deepEqual(
      rows.map((r) => [r[0], r[6]]),
      [
        ['2026-03-06T05:00:00.000000Z', '5'],
        ['2026-03-07T05:00:00.000000Z', '24'],
        ['2026-03-08T05:00:00.000000Z', '23'],
        ['2026-03-09T04:00:00.000000Z', '20'],
      ],
    );
    const utc = await exportRows({ ...base, interval: '1d', aggregation: 'sum' });
    assert.deepEqual(
      utc.map((r) => [r[0], r[6]]),
      [
        ['2026-03-07T00:00:00.000000Z', String((24 * 25) / 2)],
        ['2026-03-08T00:00:00.000000Z', String((48 * 49) / 2 - (24 * 25) / 2)],
        ['2026-03-09T00:00:00.000000Z', String((72 * 73) / 2 - (48 * 49) / 2)],
      ],
    );
  });

  test('sub-day buckets are aligned on UTC and each aggregation is applied', async () => {
    const hours = await exportRows({ ...base, end: '2026-03-07T03:00:00Z', interval: '1h', aggregation: 'max' });
    assert.deepEqual(
      hours.map((r) => [r[0], r[6]]),
      [
        ['2026-03-07T00:00:00.000000Z', '1'],
        ['2026-03-07T01:00:00.000000Z', '2'],
        ['2026-03-07T02:00:00.000000Z', '3'],
      ],
    );
    const avg = await exportRows({
      ...base,
      start: '2026-03-07T00:00:00Z',
      end: '2026-03-07T04:00:00Z',
      interval: '1d',
      aggregation: 'avg',
    });
    assert.deepEqual(
      avg.map((r) => r[6]),
      ['2.5'],
    );
    const min = await exportRows({
      ...base,
      interval: '15m',
      aggregation: 'min',
      start: '2026-03-07T05:00:00Z',
      end: '2026-03-07T05:30:00Z',
    });
    assert.deepEqual(
      min.map((r) => [r[0], r[6]]),
      [['2026-03-07T05:00:00.000000Z', '6']],
    );
  });
});
