import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { estimateRows } from '../../src/db/statements/export-slices';
import { compileAnalyticsSelect, type ExportQuery } from '../../src/exports/compile-query';
import { estimateExportRows } from '../../src/worker/slicing';
import { createTestDatabase } from '../support/database';
import { createCustomer, createDevice, createPartner, createUser, READINGS_START, seedCustomerReadings } from '../support/fixtures';

/**
 * The estimate that decides slicing is close to the rows the export really has, where EXPLAIN of
 * the export's own SELECT is not: one customer's readings among other customers' devices, as in
 * a shared deployment, after ANALYZE.
 */

const database = await createTestDatabase();
const { sql } = database;
const pool = new pg.Pool({ connectionString: database.url, max: 2 });
// The database is dropped (its sessions terminated) before this pool ends.
pool.on('error', () => undefined);
after(() => pool.end());

// The customer: 14 devices, two metrics, two days a minute apart. Others: 10 devices, one day.
const seeded = await seedCustomerReadings(sql, 14, 2);
await seedCustomerReadings(sql, 10, 1);
const otherPartner = await createPartner(sql);
await createDevice(sql, await createCustomer(sql, otherPartner));
await sql`ANALYZE devices, spaces, customers, device_readings`;

const end = new Date(READINGS_START.getTime() + 2 * 86_400_000).toISOString();
const rawQuery: ExportQuery = {
  createdBy: seeded.user.id,
  customerScopes: [],
  partnerScopes: [],
  metrics: ['temperature'],
  devices: [],
  spaces: [],
  start: READINGS_START.toISOString(),
  end,
  interval: 'raw',
  aggregation: null,
  timezone: 'UTC',
};

const actualRows = async (query: ExportQuery) => {
  const [row] = await sql.unsafe<{ n: string }[]>(`SELECT count(*) AS n FROM (${compileAnalyticsSelect(query)}) AS export`);
  return Number(row!.n);
};

describe('the estimate that decides slicing', () => {
  test('raw readings: within 20% of the rows, where EXPLAIN of the SELECT guesses a fraction', async () => {
    const actual = await actualRows(rawQuery);
    assert.equal(actual, 14 * 2 * 1440);
    const estimate = await estimateExportRows(pool, rawQuery);
    assert.ok(Math.abs(estimate - actual) / actual < 0.2, `estimate ${estimate} for ${actual} rows`);
    // What the export's own SELECT gets from the planner (the former estimate): far off.
    const selectEstimate = await estimateRows(pool, compileAnalyticsSelect(rawQuery));
    assert.ok(selectEstimate < actual * 0.6, `EXPLAIN of the SELECT: ${selectEstimate} for ${actual} rows`);
  });

  test('buckets: at most devices x metrics x buckets, close to the rows', async () => {
    const hourly: ExportQuery = { ...rawQuery, interval: '1h', aggregation: 'avg', metrics: ['active_power', 'temperature'] };
    const actual = await actualRows(hourly);
    assert.equal(actual, 14 * 2 * 48);
    const estimate = await estimateExportRows(pool, hourly);
    assert.ok(estimate >= actual && estimate <= 14 * 2 * 49, `estimate ${estimate} for ${actual} rows`);
  });

  test('a device list and another user: only the devices that user reads count', async () => {
    const outsider = await createUser(sql, 'customer', { customerId: await createCustomer(sql, otherPartner) });
    assert.equal(await estimateExportRows(pool, { ...rawQuery, createdBy: outsider.id }), 0);
    const two = { ...rawQuery, devices: seeded.deviceIds.slice(0, 2) };
    const actual = await actualRows(two);
    const estimate = await estimateExportRows(pool, two);
    assert.ok(Math.abs(estimate - actual) / actual < 0.2, `estimate ${estimate} for ${actual} rows`);
  });
});
