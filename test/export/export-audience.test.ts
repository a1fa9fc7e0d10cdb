import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { generateReadings } from '../../src/demo/readings';
import { claimExport, requeueExport } from '../../src/db/statements/export-attempts';
import { NO_FAIR_SHARE } from '../support/exports';
import { createTestApi } from '../support/api';
import { runCli } from '../support/cli';
import { parseCsv } from '../support/csv';
import { createCustomer, createDevice, createPartner, createUser, type TestUser } from '../support/fixtures';
import { directCopy, waitForFinalExport } from '../support/export-rows';
import { getObject } from '../support/objects';
import { startTestWorker } from '../support/worker';

/**
 * Who an export's rows are for, through the API and a real worker: every export below is
 * created through the API, run by a worker into the s3rver bucket, and its CSV downloaded by
 * every user who can read the export, from the url their own GET signs. Whoever created it and
 * however it is scoped, no reader finds a device they cannot read themselves; and an export runs
 * the query as it was when the export was created.
 *
 * Everything that must happen "between create and run" (a device moving to another customer,
 * a PATCH of the query, cancels and retries) happens before the worker starts.
 */

const api = await createTestApi();
const { sql } = api.db;

// Two partners: P1 with customers C1 and C1b, P2 with C2.
const p1 = await createPartner(sql);
const p2 = await createPartner(sql);
const c1 = await createCustomer(sql, p1);
const c1b = await createCustomer(sql, p1);
const c2 = await createCustomer(sql, p2);
const admin = await createUser(sql, 'admin');
const partner1 = await createUser(sql, 'partner', { partnerId: p1 });
const partner2 = await createUser(sql, 'partner', { partnerId: p2 });
const user1 = await createUser(sql, 'customer', { customerId: c1 });
const user1b = await createUser(sql, 'customer', { customerId: c1b });
const user2 = await createUser(sql, 'customer', { customerId: c2 });
const USERS: Record<string, TestUser> = { admin, partner1, partner2, user1, user1b, user2 };

const dev1 = await createDevice(sql, c1, { name: 'dev1' });
const dev1b = await createDevice(sql, c1b, { name: 'dev1b' });
const dev2 = await createDevice(sql, c2, { name: 'dev2' });
// Belongs to C1b when the exports are created, to C1 when they run.
const mover = await createDevice(sql, c1b, { name: 'mover' });
const DEVICE_NAMES = new Map([
  [dev1, 'dev1'],
  [dev1b, 'dev1b'],
  [dev2, 'dev2'],
  [mover, 'mover'],
]);
await generateReadings(sql, {
  deviceIds: [dev1, dev1b, dev2, mover],
  metrics: ['temperature', 'energy'],
  start: new Date('2026-01-01T00:00:00Z'),
  end: new Date('2026-01-02T00:00:00Z'),
  step: '1h',
});
const MORNING = { start: '2026-01-01T00:00:00Z', end: '2026-01-01T06:00:00Z' };
const AFTERNOON = { start: '2026-01-01T12:00:00Z', end: '2026-01-01T18:00:00Z' };

const as = (user: TestUser) => ({
  get: (path: string) => api.request('GET', path, { key: user.apiKey }),
  post: (path: string, body: unknown) => api.request('POST', path, { key: user.apiKey, body }),
  patch: (path: string, body: unknown) => api.request('PATCH', path, { key: user.apiKey, body }),
});

async function newQuery(user: TestUser, extra: Record<string, unknown> = {}): Promise<string> {
  const response = await as(user).post('/analytics/queries/', { name: 'all my devices', metrics: ['temperature'], ...MORNING, ...extra });
  assert.equal(response.status, 201, response.text);
  return response.body.id;
}

async function newExport(user: TestUser, query: string, scopes: Record<string, unknown> = {}): Promise<string> {
  const response = await as(user).post('/analytics/export', { name: 'e', query, ...scopes });
  assert.equal(response.status, 201, response.text);
  return response.body.id;
}

const byCreator = {
  admin: await newQuery(admin),
  partner1: await newQuery(partner1),
  partner2: await newQuery(partner2),
  user1: await newQuery(user1),
  user1b: await newQuery(user1b),
};
// An admin's query naming devices of every customer.
const adminNamingAll = await newQuery(admin, { devices: [dev1, dev1b, dev2, mover] });

/** Each export: who made it, how it is scoped, and the devices it must hold when it runs (mover then in C1). */
const CASES: Array<{ name: string; id: string; devices: string[]; readers: string[]; notReaders: string[] }> = [];
async function exportCase(
  name: string,
  creator: keyof typeof byCreator,
  scopes: Record<string, unknown>,
  devices: string[],
  readers: string[],
  notReaders: string[],
  query = byCreator[creator],
) {
  CASES.push({ name, id: await newExport(USERS[creator]!, query, scopes), devices, readers, notReaders });
}
await exportCase(
  'partner user, customer_scopes [C1b], partner_scopes [] (the leak of issue 10)',
  'partner1',
  { customer_scopes: [c1b], partner_scopes: [] },
  [dev1b],
  ['user1b', 'partner1'],
  ['user1'],
);
await exportCase('admin, scoped to customer C2', 'admin', { customer_scopes: [c2] }, [dev2], ['user2', 'partner2'], ['user1', 'partner1']);
await exportCase(
  'admin, query naming every device, scoped to customer C1b',
  'admin',
  { customer_scopes: [c1b] },
  [dev1b],
  ['user1b'],
  ['user1', 'user2'],
  adminNamingAll,
);
await exportCase(
  'admin, partner_scopes [P1]',
  'admin',
  { partner_scopes: [p1] },
  [dev1, dev1b, mover],
  ['partner1'],
  ['partner2', 'user1'],
);
await exportCase(
  'admin, customer_scopes [C1] and partner_scopes [P1]',
  'admin',
  { customer_scopes: [c1], partner_scopes: [p1] },
  [dev1, mover],
  ['user1', 'partner1'],
  ['user1b'],
);
await exportCase('admin, no scopes (admins only): every device', 'admin', {}, [dev1, dev1b, dev2, mover], ['admin'], ['partner1', 'user1']);
await exportCase(
  'partner user, default scopes (partner_scopes [P1])',
  'partner1',
  {},
  [dev1, dev1b, mover],
  ['partner1'],
  ['user1', 'partner2'],
);
await exportCase(
  'partner user, customer_scopes [C1] and partner_scopes [P1]',
  'partner1',
  { customer_scopes: [c1], partner_scopes: [p1] },
  [dev1, mover],
  ['user1', 'partner1'],
  ['user1b'],
);
await exportCase(
  'other partner user, customer_scopes [C2]',
  'partner2',
  { customer_scopes: [c2], partner_scopes: [] },
  [dev2],
  ['user2'],
  ['partner1'],
);
await exportCase(
  'customer user, default scopes: the device that moved in is theirs now',
  'user1',
  {},
  [dev1, mover],
  ['user1'],
  ['user1b'],
);
await exportCase(
  'customer user, default scopes: the device that moved away is no longer theirs',
  'user1b',
  {},
  [dev1b],
  ['user1b'],
  ['user1'],
);
// Created scoped to C1b while the mover was there: its audience is C1b's, so it runs without it.
await exportCase(
  'partner user, customer_scopes [C1b], device moved away before the run',
  'partner1',
  { customer_scopes: [c1b], partner_scopes: [] },
  [dev1b],
  ['user1b'],
  ['user1'],
);

// Failed before it ran, retried after the move: the retry keeps the creator and the scopes.
const toRetry = await newExport(partner1, byCreator.partner1, { customer_scopes: [c1b], partner_scopes: [] });

// The snapshot: exports of a query that is changed after they were created.
const changing = await newQuery(user1, { metrics: ['temperature'], ...MORNING });
const beforeChange = await newExport(user1, changing);
const beforeChangeToRetry = await newExport(user1, changing);
const beforeChangeRequeued = await newExport(user1, changing);

// A first attempt of beforeChangeRequeued meets a transient fault and puts it back in the
// queue, with the worker's own statements; its next attempt runs after the PATCH below.
{
  const pool = new pg.Pool({ connectionString: api.db.url, max: 1 });
  try {
    const claimed = await claimExport(pool, beforeChangeRequeued, 'a worker that met a transient fault', NO_FAIR_SHARE);
    assert.ok(claimed && 'claimed' in claimed);
    assert.ok(await requeueExport(pool, claimed.claimed, 0, { code: 'storage_error', message: 'connection reset' }));
  } finally {
    await pool.end();
  }
}

for (const id of [toRetry, beforeChangeToRetry]) {
  const cancelled = await as(admin).post(`/analytics/exports/${id}/cancel/`, {});
  assert.equal(cancelled.status, 200, cancelled.text);
}

// --- Between create and run ---
await sql`UPDATE devices SET customer_id = ${c1} WHERE id = ${mover}`;
const patched = await as(user1).patch(`/analytics/queries/${changing}/`, { metrics: ['energy'], ...AFTERNOON });
assert.equal(patched.status, 200, patched.text);
const afterChange = await newExport(user1, changing);
const retried = (await sql<{ id: string }[]>`SELECT retry_export(${toRetry}) AS id`)[0]!.id;
const retriedBeforeChange = (await sql<{ id: string }[]>`SELECT retry_export(${beforeChangeToRetry}) AS id`)[0]!.id;
CASES.push({
  name: 'retry_export of a partner export scoped to C1b, after the move',
  id: retried,
  devices: [dev1b],
  readers: ['user1b', 'partner1'],
  notReaders: ['user1'],
});

await startTestWorker(api.db, api.bucket);

async function visibleDevices(user: TestUser): Promise<Set<string>> {
  return new Set((await sql<{ id: string }[]>`SELECT id FROM devices_visible_to(${user.id})`).map((row) => row.id));
}

/** The CSV's data rows as a reader downloads them: GET the export, then its url. */
async function download(user: TestUser, id: string): Promise<string[][] | undefined> {
  const response = await as(user).get(`/analytics/exports/${id}/`);
  if (response.status === 404) return undefined;
  assert.equal(response.status, 200, response.text);
  assert.equal(response.body.status, 'complete', JSON.stringify(response.body.errors));
  const file = await fetch(response.body.url);
  assert.equal(file.status, 200);
  return parseCsv(await file.text()).slice(1);
}

const deviceNames = (ids: Iterable<string>) => [...ids].map((id) => DEVICE_NAMES.get(id) ?? id).sort();

describe('the rows of an export', () => {
  for (const c of CASES) {
    test(`${c.name}: exactly its devices, and no reader gets a device they cannot read`, async () => {
      const final = await waitForFinalExport(sql, c.id);
      assert.equal(final.status, 'complete', JSON.stringify(final.errors));
      for (const [who, user] of Object.entries(USERS)) {
        const rows = await download(user, c.id);
        if (c.readers.includes(who)) assert.ok(rows, `${who} reads it`);
        if (c.notReaders.includes(who)) assert.equal(rows, undefined, `${who} does not read it`);
        if (!rows) continue;
        const exported = new Set(rows.map((row) => row[1]!));
        assert.deepEqual(deviceNames(exported), deviceNames(c.devices), `${who} downloads exactly the export's devices`);
        const visible = await visibleDevices(user);
        const foreign = [...exported].filter((id) => !visible.has(id));
        assert.deepEqual(deviceNames(foreign), [], `${who} receives only devices they may read`);
      }
    });
  }

  test('retry_export keeps the creator and the scopes of the export it retries', async () => {
    const [row] = await sql<{ created_by: string; customer_scopes: string[]; partner_scopes: string[] }[]>`
      SELECT created_by, customer_scopes, partner_scopes FROM analytics_exports WHERE id = ${retried}`;
    assert.deepEqual(row, { created_by: partner1.id, customer_scopes: [c1b], partner_scopes: [] });
  });
});

describe('the run-time restriction in SQL, over every combination of scopes', () => {
  const customers = { C1: c1, C1b: c1b, C2: c2 };
  const partners = { P1: p1, P2: p2 };
  const subsets = <T>(items: T[]): T[][] => items.reduce<T[][]>((all, item) => all.concat(all.map((s) => [...s, item])), [[]]);

  test('no user who can read an export may miss a device its scopes let through; refused scopes let nothing through', async () => {
    let accepted = 0;
    for (const cs of subsets(Object.entries(customers))) {
      for (const ps of subsets(Object.entries(partners))) {
        const customerScopes = cs.map(([, id]) => id);
        const partnerScopes = ps.map(([, id]) => id);
        const label = `customer_scopes [${cs.map(([n]) => n)}], partner_scopes [${ps.map(([n]) => n)}]`;
        const readable = new Set(
          (await sql<{ id: string }[]>`SELECT id FROM devices_readable_by_scopes(${customerScopes}::uuid[], ${partnerScopes}::uuid[])`).map(
            (r) => r.id,
          ),
        );
        const conflicts = await sql`SELECT field FROM export_scope_conflicts(${customerScopes}::uuid[], ${partnerScopes}::uuid[])`;
        if (conflicts.length > 0) {
          assert.deepEqual(deviceNames(readable), [], `${label}: refused at create, and would be empty anyway`);
          continue;
        }
        accepted++;
        assert.ok(readable.size > 0, `${label}: accepted scopes share devices (every customer here has one)`);
        for (const [who, user] of Object.entries(USERS)) {
          const [sees] = await sql<
            { sees: boolean }[]
          >`SELECT user_sees_scopes(${user.id}, ${customerScopes}::uuid[], ${partnerScopes}::uuid[]) AS sees`;
          if (!sees!.sees) continue;
          const visible = await visibleDevices(user);
          const foreign = [...readable].filter((id) => !visible.has(id));
          assert.deepEqual(deviceNames(foreign), [], `${label}: ${who} reads the export and every device it can hold`);
        }
      }
    }
    // [], [C1], [C1b], [C2], [P1], [P2], [C1,P1], [C1b,P1], [C2,P2]
    assert.equal(accepted, 9);
  });
});

describe('scopes whose readers share no device are refused at create', () => {
  test('two customers, two partners, or a customer outside the partner: 400 on the field, nothing stored', async () => {
    const cases: Array<[TestUser, Record<string, unknown>, string, RegExp]> = [
      [admin, { customer_scopes: [c1, c2] }, 'customer_scopes', /one customer at most/],
      [partner1, { customer_scopes: [c1, c1b], partner_scopes: [] }, 'customer_scopes', /one customer at most/],
      [admin, { partner_scopes: [p1, p2] }, 'partner_scopes', /one partner at most/],
      [
        admin,
        { customer_scopes: [c2], partner_scopes: [p1] },
        'customer_scopes',
        new RegExp(`Customer "${c2}" does not belong to partner "${p1}"`),
      ],
    ];
    for (const [user, scopes, field, message] of cases) {
      const before = (await sql`SELECT count(*)::int AS n FROM analytics_exports`)[0]!.n;
      const query = user === partner1 ? byCreator.partner1 : byCreator.admin;
      const response = await as(user).post('/analytics/export', { name: 'empty for everyone', query, ...scopes });
      assert.equal(response.status, 400, JSON.stringify(scopes));
      assert.deepEqual(Object.keys(response.body), [field], response.text);
      assert.match(response.body[field].join(' '), message);
      assert.match(response.body[field].join(' '), /always be empty/);
      assert.equal((await sql`SELECT count(*)::int AS n FROM analytics_exports`)[0]!.n, before);
    }
  });

  test('queries are definitions, not data: their scopes are not restricted this way', async () => {
    const response = await as(admin).post('/analytics/queries/', {
      name: 'shared',
      metrics: ['temperature'],
      ...MORNING,
      customer_scopes: [c1, c2],
      partner_scopes: [p1, p2],
    });
    assert.equal(response.status, 201, response.text);
  });
});

const cli = (args: string[]) => runCli(args, { DATABASE_URL: api.db.url });

/** The (metric, hour) pairs of an export's file. */
async function metricsAndHours(id: string): Promise<{ metrics: string[]; hours: string[] }> {
  const final = await waitForFinalExport(sql, id);
  assert.equal(final.status, 'complete', JSON.stringify(final.errors));
  const rows = parseCsv((await getObject(api.bucket.client, api.bucket.config.bucket, final.object_key!)).body.toString('utf8')).slice(1);
  return { metrics: [...new Set(rows.map((r) => r[5]!))].sort(), hours: [...new Set(rows.map((r) => r[0]!.slice(11, 13)))].sort() };
}

describe('an export runs the query as it was when the export was created', () => {
  const morningTemperature = { metrics: ['temperature'], hours: ['00', '01', '02', '03', '04', '05'] };
  const afternoonEnergy = { metrics: ['energy'], hours: ['12', '13', '14', '15', '16', '17'] };

  test('an export queued before a PATCH of its query runs the query as it was', async () => {
    assert.deepEqual(await metricsAndHours(beforeChange), morningTemperature);
  });

  test('the PATCH changes the exports created after it', async () => {
    assert.deepEqual(await metricsAndHours(afterChange), afternoonEnergy);
  });

  test('an attempt after a transient fault, and after the PATCH, runs the definition as it was', async () => {
    assert.deepEqual(await metricsAndHours(beforeChangeRequeued), morningTemperature);
    assert.equal((await waitForFinalExport(sql, beforeChangeRequeued)).attempts, 2);
  });

  test('retry_export of an export created before the PATCH runs the original definition', async () => {
    assert.deepEqual(await metricsAndHours(retriedBeforeChange), morningTemperature);
  });

  test('`exports sql ID` prints the SELECT of the snapshot, which is what the export wrote', async () => {
    const run = await cli(['exports', 'sql', beforeChange]);
    assert.equal(run.code, 0, run.stderr);
    const select = run.stdout.trim();
    assert.match(select, /'temperature'/);
    assert.doesNotMatch(select, /'energy'/);
    const final = await waitForFinalExport(sql, beforeChange);
    const written = await getObject(api.bucket.client, api.bucket.config.bucket, final.object_key!);
    assert.ok((await directCopy(api.db.url, select)).equals(written.body), 'the printed SELECT gives the exported file byte for byte');
  });

  test('the database refuses to change an export’s definition (AE009), whatever its status', async () => {
    await waitForFinalExport(sql, beforeChange);
    for (const id of [beforeChange, beforeChangeToRetry]) {
      await assert.rejects(
        sql`UPDATE analytics_exports SET query_definition = query_definition || '{"metrics": ["energy"]}' WHERE id = ${id}`,
        (error: { code?: string }) => error.code === 'AE009',
      );
    }
    const [row] = await sql<
      { metrics: string[] }[]
    >`SELECT query_definition -> 'metrics' AS metrics FROM analytics_exports WHERE id = ${beforeChange}`;
    assert.deepEqual(row!.metrics, ['temperature']);
  });
});
