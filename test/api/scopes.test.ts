import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTestApi } from '../support/api';
import { markComplete } from '../support/exports';
import { createCustomer, createDevice, createPartner, createSpace, createUser, type TestUser } from '../support/fixtures';

/**
 * Scopes: two customers of one partner, that partner, a second partner with its own customer,
 * and admins, each reaching for the others' objects. Whatever is outside a caller's scopes is
 * 404 (never 403), is missing from lists, cannot be deleted, exported or named in a query; what
 * a caller sees but does not reach all the scopes of is 403 to change, delete or cancel.
 */

const api = await createTestApi();
const { sql } = api.db;
const p1 = await createPartner(sql);
const p2 = await createPartner(sql);
const c1 = await createCustomer(sql, p1);
const c2 = await createCustomer(sql, p1);
const c3 = await createCustomer(sql, p2);
const alice = await createUser(sql, 'customer', { customerId: c1 });
const bob = await createUser(sql, 'customer', { customerId: c2 });
const partner = await createUser(sql, 'partner', { partnerId: p1 });
const otherPartner = await createUser(sql, 'partner', { partnerId: p2 });
const carol = await createUser(sql, 'customer', { customerId: c3 });
const admin = await createUser(sql, 'admin');
const admin2 = await createUser(sql, 'admin');
const s1 = await createSpace(sql, c1);
const s2 = await createSpace(sql, c2);
const d1 = await createDevice(sql, c1, { spaceId: s1 });
const d2 = await createDevice(sql, c2, { spaceId: s2 });
const d3 = await createDevice(sql, c3);

const as = (user: TestUser) => ({
  get: (path: string) => api.request('GET', path, { key: user.apiKey }),
  post: (path: string, body: unknown) => api.request('POST', path, { key: user.apiKey, body }),
  patch: (path: string, body: unknown) => api.request('PATCH', path, { key: user.apiKey, body }),
  delete: (path: string) => api.request('DELETE', path, { key: user.apiKey }),
});
const definition = { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' };

async function newQuery(user: TestUser, extra: Record<string, unknown> = {}): Promise<string> {
  const response = await as(user).post('/analytics/queries/', { name: 'q', ...definition, ...extra });
  assert.equal(response.status, 201, response.text);
  return response.body.id;
}
async function newExport(user: TestUser, query: string, extra: Record<string, unknown> = {}): Promise<string> {
  const response = await as(user).post('/analytics/export', { name: 'e', query, ...extra });
  assert.equal(response.status, 201, response.text);
  return response.body.id;
}

const q1 = await newQuery(alice);
const q2 = await newQuery(bob);
const qp = await newQuery(partner);
const e1 = await newExport(alice, q1);
const e2 = await newExport(bob, q2);
const ep = await newExport(partner, qp);
const e3 = await newExport(carol, await newQuery(carol));
const ea = await newExport(admin, await newQuery(admin));
const ALL = [e1, e2, ep, e3, ea];

/** Who sees which export, by the rules in docs/api.md (Scopes). */
const SEES: Array<[string, TestUser, string[]]> = [
  ['customer 1', alice, [e1]],
  ['customer 2', bob, [e2]],
  ['their partner', partner, [e1, e2, ep]],
  ['the other partner', otherPartner, [e3]],
  ["the other partner's customer", carol, [e3]],
  ['an admin', admin, ALL],
  ['another admin', admin2, ALL],
];

describe('exports', () => {
  for (const [who, user, visible] of SEES) {
    test(`${who}: get and list show exactly what is in scope, the rest is 404`, async () => {
      for (const id of ALL) {
        const response = await as(user).get(`/analytics/exports/${id}/`);
        assert.equal(response.status, visible.includes(id) ? 200 : 404, `${who} GET ${id}`);
        if (response.status === 404) assert.deepEqual(response.body, { detail: 'Not found.' });
      }
      const listed = (await as(user).get('/analytics/exports/?limit=1000')).body.map((e: { id: string }) => e.id);
      assert.deepEqual(listed.sort(), [...visible].sort());
    });
  }

  test('a foreign export cannot be deleted or cancelled: 404, and it stays, download and all', async () => {
    await markComplete(sql, api.bucket, e1, 'a\n1\n');
    for (const user of [bob, otherPartner, carol]) {
      assert.equal((await as(user).delete(`/analytics/exports/${e1}/`)).status, 404);
      assert.equal((await as(user).post(`/analytics/exports/${e1}/cancel/`, {})).status, 404);
    }
    const { url } = (await as(alice).get(`/analytics/exports/${e1}/`)).body;
    assert.equal((await fetch(url)).status, 200, 'the file is still there');
    assert.equal((await sql`SELECT status FROM analytics_exports WHERE id = ${e1}`)[0]!.status, 'complete');
  });

  test('a query the caller cannot see cannot be exported (400 on query)', async () => {
    for (const [user, query] of [
      [bob, q1],
      [alice, qp],
      [otherPartner, q1],
      [carol, q2],
    ] as const) {
      const before = (await sql`SELECT count(*)::int AS n FROM analytics_exports`)[0]!.n;
      const response = await as(user).post('/analytics/export', { name: 'steal', query });
      assert.equal(response.status, 400);
      assert.deepEqual(Object.keys(response.body), ['query']);
      assert.match(response.body.query[0], /does not exist/, 'the same answer as for a query that does not exist');
      assert.equal((await sql`SELECT count(*)::int AS n FROM analytics_exports`)[0]!.n, before);
    }
    // The partner sees its customers' queries, and so may export them.
    assert.equal((await as(partner).post('/analytics/export', { name: 'ok', query: q1 })).status, 201);
  });
});

describe('setting scopes', () => {
  test('defaults: customer -> their customer, partner -> their partner, admin -> admins only', async () => {
    assert.deepEqual((await as(alice).get(`/analytics/exports/${e1}/`)).body.customer_scopes, [c1]);
    const mine = (await as(partner).get(`/analytics/exports/${ep}/`)).body;
    assert.deepEqual([mine.customer_scopes, mine.partner_scopes], [[], [p1]]);
    const admins = (await as(admin).get(`/analytics/exports/${ea}/`)).body;
    assert.deepEqual([admins.customer_scopes, admins.partner_scopes], [[], []]);
  });

  test('scopes the caller cannot reach are 400 on that field', async () => {
    const cases: Array<[TestUser, Record<string, unknown>, string]> = [
      [alice, { customer_scopes: [c2] }, 'customer_scopes'],
      [alice, { partner_scopes: [p1] }, 'partner_scopes'],
      [alice, { customer_scopes: [] }, 'customer_scopes'],
      [partner, { customer_scopes: [c3] }, 'customer_scopes'],
      [partner, { partner_scopes: [p2] }, 'partner_scopes'],
      [partner, { partner_scopes: [] }, 'partner_scopes'],
      [admin, { partner_scopes: ['00000000-0000-4000-8000-000000000000'] }, 'partner_scopes'],
      [admin, { customer_scopes: ['00000000-0000-4000-8000-000000000000'] }, 'customer_scopes'],
    ];
    for (const [user, scopes, field] of cases) {
      const query = user === alice ? q1 : user === partner ? qp : q1;
      const response = await as(user).post('/analytics/export', { name: 'scoped', query, ...scopes });
      assert.equal(response.status, 400, JSON.stringify(scopes));
      assert.deepEqual(Object.keys(response.body), [field], JSON.stringify(response.body));
      const q = await as(user).post('/analytics/queries/', { name: 'scoped', ...definition, ...scopes });
      assert.equal(q.status, 400);
      assert.deepEqual(Object.keys(q.body), [field]);
    }
  });

  test('a partner can scope an export to one customer: that customer sees it, the sibling does not', async () => {
    const id = await newExport(partner, qp, { customer_scopes: [c1], partner_scopes: [] });
    assert.equal((await as(alice).get(`/analytics/exports/${id}/`)).status, 200);
    assert.equal((await as(bob).get(`/analytics/exports/${id}/`)).status, 404);
    assert.equal((await as(partner).get(`/analytics/exports/${id}/`)).status, 200);
    const scoped = await newExport(admin, q1, { customer_scopes: [c3] });
    assert.equal((await as(carol).get(`/analytics/exports/${scoped}/`)).status, 200);
    assert.equal((await as(otherPartner).get(`/analytics/exports/${scoped}/`)).status, 200);
    assert.equal((await as(alice).get(`/analytics/exports/${scoped}/`)).status, 404);
  });
});

describe('queries', () => {
  test('a foreign query is 404 to get, change or delete, and missing from the list', async () => {
    for (const user of [bob, otherPartner, carol]) {
      assert.equal((await as(user).get(`/analytics/queries/${q1}/`)).status, 404);
      assert.equal((await as(user).patch(`/analytics/queries/${q1}/`, { name: 'mine now' })).status, 404);
      assert.equal((await as(user).delete(`/analytics/queries/${q1}/`)).status, 404);
      const listed = (await as(user).get('/analytics/queries/?limit=1000')).body.map((q: { id: string }) => q.id);
      assert.equal(listed.includes(q1), false);
    }
    assert.equal((await as(alice).get(`/analytics/queries/${q1}/`)).body.name, 'q');
    assert.equal((await as(partner).get(`/analytics/queries/${q1}/`)).status, 200);
  });

  test('devices and spaces named in a definition must be visible to the caller', async () => {
    const refused: Array<[TestUser, Record<string, unknown>, string]> = [
      [alice, { devices: [d2] }, 'devices'],
      [alice, { devices: [d1, d3] }, 'devices'],
      [alice, { spaces: [s2] }, 'spaces'],
      [bob, { devices: [d1] }, 'devices'],
      [partner, { devices: [d3] }, 'devices'],
      [carol, { spaces: [s1] }, 'spaces'],
    ];
    for (const [user, refs, field] of refused) {
      const response = await as(user).post('/analytics/queries/', { name: 'peek', ...definition, ...refs });
      assert.equal(response.status, 400, JSON.stringify(refs));
      assert.deepEqual(Object.keys(response.body), [field]);
      assert.match(response.body[field].join(' '), /does not exist/, 'a foreign device reads like a missing one');
    }
    // A PATCH cannot sneak them in either.
    assert.equal((await as(alice).patch(`/analytics/queries/${q1}/`, { devices: [d2] })).status, 400);
    assert.deepEqual((await as(alice).get(`/analytics/queries/${q1}/`)).body.devices, []);

    await newQuery(alice, { devices: [d1], spaces: [s1] });
    await newQuery(partner, { devices: [d1, d2], spaces: [s1, s2] });
    await newQuery(admin, { devices: [d1, d2, d3] });
  });

  test('an update keeps devices someone else gave the query, but checks what the caller adds', async () => {
    // Shared by an admin with both of the partner's customers: the partner reaches every scope.
    const shared = await newQuery(admin, { devices: [d1, d3], customer_scopes: [c1, c2] });
    const renamed = await as(partner).patch(`/analytics/queries/${shared}/`, { name: 'renamed by the partner' });
    assert.equal(renamed.status, 200, renamed.text);
    assert.deepEqual(renamed.body.devices, [d1, d3]);
    assert.deepEqual(renamed.body.customer_scopes, [c1, c2]);
    const grab = await as(partner).patch(`/analytics/queries/${shared}/`, { devices: [d1, d3, d2] });
    assert.equal(grab.status, 200, 'd2 is the partner’s own');
    const foreignDevice = await createDevice(sql, c3);
    const foreign = await as(partner).patch(`/analytics/queries/${shared}/`, { devices: [d1, d3, d2, foreignDevice] });
    assert.equal(foreign.status, 400);
    assert.deepEqual(foreign.body, { devices: [`Invalid pk "${foreignDevice}" - object does not exist.`] });
  });
});

describe('changing, deleting or cancelling needs reach over every scope', () => {
  const forbidden = (response: { status: number; body: any; text: string }) => {
    assert.equal(response.status, 403, response.text);
    assert.deepEqual(Object.keys(response.body), ['detail']);
    assert.match(response.body.detail, /see this object but not/);
  };

  test("a customer cannot take their partner's query away from a sibling customer, nor delete it: 403, nothing changed", async () => {
    const shared = await newQuery(partner, { customer_scopes: [c1, c2], partner_scopes: [p1] });
    const before = (await as(alice).get(`/analytics/queries/${shared}/`)).body;
    forbidden(await as(alice).patch(`/analytics/queries/${shared}/`, { customer_scopes: [c1], partner_scopes: [] }));
    forbidden(await as(alice).patch(`/analytics/queries/${shared}/`, { name: 'mine now' }));
    forbidden(await api.request('PUT', `/analytics/queries/${shared}/`, { key: alice.apiKey, body: { name: 'mine', ...definition } }));
    forbidden(await as(alice).delete(`/analytics/queries/${shared}/`));
    assert.deepEqual((await as(alice).get(`/analytics/queries/${shared}/`)).body, before, 'unchanged');
    assert.equal((await as(bob).get(`/analytics/queries/${shared}/`)).status, 200, 'the sibling still sees it');

    // The partner reaches every scope on it: it may change and delete it.
    const narrowed = await as(partner).patch(`/analytics/queries/${shared}/`, { customer_scopes: [c1], partner_scopes: [p1] });
    assert.equal(narrowed.status, 200, narrowed.text);
    assert.equal((await as(partner).delete(`/analytics/queries/${shared}/`)).status, 204);
  });

  test('a change must leave every scope within reach: 400 on the field, nothing changed', async () => {
    const query = await newQuery(partner, { customer_scopes: [c1], partner_scopes: [p1] });
    const widened = await as(partner).patch(`/analytics/queries/${query}/`, { customer_scopes: [c1, c3] });
    assert.equal(widened.status, 400);
    assert.deepEqual(widened.body, { customer_scopes: [`Invalid pk "${c3}" - object does not exist.`] });
    assert.deepEqual((await as(partner).get(`/analytics/queries/${query}/`)).body.customer_scopes, [c1]);
  });

  test('an export a customer sees through their customer but that is shared with the partner: DELETE and cancel are 403', async () => {
    const id = await newExport(partner, qp, { customer_scopes: [c1], partner_scopes: [p1] });
    forbidden(await as(alice).delete(`/analytics/exports/${id}/`));
    forbidden(await as(alice).post(`/analytics/exports/${id}/cancel/`, {}));
    const [row] = await sql<{ status: string; cancel_requested_at: Date | null }[]>`
      SELECT status, cancel_requested_at FROM analytics_exports WHERE id = ${id}`;
    assert.deepEqual(row, { status: 'queued', cancel_requested_at: null }, 'still there, not cancelled');

    // Its owner reaches both scopes.
    const cancelled = await as(partner).post(`/analytics/exports/${id}/cancel/`, {});
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.errors.code, 'cancelled');
    assert.equal((await as(partner).delete(`/analytics/exports/${id}/`)).status, 204);
    assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${id}`).length, 0);
  });

  test('a customer still deletes and cancels their own exports', async () => {
    const cancelled = await as(alice).post(`/analytics/exports/${await newExport(alice, q1)}/cancel/`, {});
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal((await as(alice).delete(`/analytics/exports/${await newExport(alice, q1)}/`)).status, 204);
  });
});
