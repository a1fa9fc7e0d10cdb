import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as v from 'valibot';
import { QueryResource } from '../../src/api/queries/schemas';
import { createTestApi } from '../support/api';
import { createCustomer, createDevice, createPartner, createSpace, createUser } from '../support/fixtures';

/** Analytics Query CRUD at /analytics/queries/ with the definition's rules (docs/api.md). */

const api = await createTestApi();
const { sql } = api.db;
const partnerId = await createPartner(sql);
const customerId = await createCustomer(sql, partnerId);
const user = await createUser(sql, 'customer', { customerId });
const building = await createSpace(sql, customerId);
const device = await createDevice(sql, customerId, { spaceId: building });

const definition = {
  name: 'Power by hour',
  metrics: ['active_power', 'energy'],
  start: '2026-01-01T00:00:00Z',
  end: '2026-01-08T00:00:00+01:00',
  interval: '1h',
  aggregation: 'avg',
};
const call = (method: string, path: string, body?: unknown) => api.request(method, path, { key: user.apiKey, body });
const count = async () => (await sql`SELECT count(*)::int AS n FROM analytics_queries`)[0]!.n as number;

describe('POST /analytics/queries/', () => {
  test('201 with every field, defaults filled in', async () => {
    const response = await call('POST', '/analytics/queries/', { ...definition, devices: [device], spaces: [building] });
    assert.equal(response.status, 201);
    const q = v.parse(QueryResource, response.body);
    assert.deepEqual(Object.keys(response.body), [
      'id',
      'created',
      'modified',
      'created_by',
      'name',
      'notes',
      'tags',
      'customer_scopes',
      'partner_scopes',
      'metrics',
      'devices',
      'spaces',
      'start',
      'end',
      'interval',
      'aggregation',
      'timezone',
    ]);
    assert.equal(q.created_by, user.id);
    assert.equal(q.name, 'Power by hour');
    assert.equal(q.notes, '');
    assert.deepEqual(q.tags, []);
    assert.deepEqual(q.customer_scopes, [customerId]);
    assert.deepEqual(q.partner_scopes, []);
    assert.deepEqual(q.metrics, ['active_power', 'energy']);
    assert.deepEqual(q.devices, [device]);
    assert.deepEqual(q.spaces, [building]);
    assert.equal(q.start, '2026-01-01T00:00:00.000000Z');
    assert.equal(q.end, '2026-01-07T23:00:00.000000Z', 'stored and shown in UTC');
    assert.equal(q.interval, '1h');
    assert.equal(q.aggregation, 'avg');
    assert.equal(q.timezone, 'UTC');
  });

  test('raw needs no aggregation; a timezone is kept', async () => {
    const response = await call('POST', '/analytics/queries', {
      name: 'raw',
      metrics: ['temperature'],
      start: '2026-01-01T00:00:00Z',
      end: '2026-01-02T00:00:00Z',
      timezone: 'Europe/Berlin',
    });
    assert.equal(response.status, 201);
    assert.equal(response.body.interval, 'raw');
    assert.equal(response.body.aggregation, null);
    assert.equal(response.body.timezone, 'Europe/Berlin');
  });

  const bad: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['no metrics', { metrics: [] }, 'metrics', /at least one/],
    ['21 metrics', { metrics: Array.from({ length: 21 }, () => 'energy') }, 'metrics', /no more than 20/],
    ['an unknown metric', { metrics: ['energy', 'flux'] }, 'metrics', /Unknown metric "flux"/],
    ['end before start', { end: '2025-12-31T00:00:00Z' }, 'end', /after start/],
    ['end equal to start', { end: '2026-01-01T00:00:00Z' }, 'end', /after start/],
    ['a start without a time zone', { start: '2026-01-01T00:00:00' }, 'start', /ISO 8601/],
    ['a start that is no date', { start: 'yesterday' }, 'start', /ISO 8601/],
    ['an impossible date', { start: '2026-02-31T00:00:00Z' }, 'start', /ISO 8601/],
    ['an impossible time', { end: '2026-01-02T24:00:00Z' }, 'end', /ISO 8601/],
    ['an unknown interval', { interval: '2h' }, 'interval', /valid choice/],
    ['no aggregation with an interval', { aggregation: undefined }, 'aggregation', /required when interval is not raw/],
    ['an aggregation with raw', { interval: 'raw' }, 'aggregation', /null or absent when interval is raw/],
    ['an unknown aggregation', { aggregation: 'median' }, 'aggregation', /valid choice/],
    ['an unknown time zone', { timezone: 'Mars/Olympus' }, 'timezone', /Unknown time zone/],
    ['an unknown device', { devices: ['00000000-0000-4000-8000-000000000000'] }, 'devices', /does not exist/],
    ['a device id that is no uuid', { devices: ['x'] }, 'devices', /valid UUID/],
    ['an unknown space', { spaces: ['00000000-0000-4000-8000-000000000000'] }, 'spaces', /does not exist/],
    ['no name', { name: undefined }, 'name', /required/],
    ['a long name', { name: 'n'.repeat(101) }, 'name', /100 characters/],
  ];
  for (const [what, change, field, pattern] of bad) {
    test(`400 for ${what}, nothing stored`, async () => {
      const before = await count();
      const response = await call('POST', '/analytics/queries/', { ...definition, ...change });
      assert.equal(response.status, 400, response.text);
      assert.match((response.body[field] ?? []).join(' '), pattern, JSON.stringify(response.body));
      assert.equal(await count(), before);
    });
  }
});

describe('GET, PUT, PATCH, DELETE /analytics/queries/{id}/', () => {
  test('read, replace, patch and delete one', async () => {
    const created = (await call('POST', '/analytics/queries/', { ...definition, notes: 'n', tags: ['t'] })).body;
    const got = await call('GET', `/analytics/queries/${created.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, created);

    const put = await call('PUT', `/analytics/queries/${created.id}/`, {
      name: 'Replaced',
      metrics: ['temperature'],
      start: definition.start,
      end: definition.end,
    });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.name, 'Replaced');
    assert.deepEqual(put.body.metrics, ['temperature']);
    assert.equal(put.body.interval, '1h', 'optional fields left out keep their values');
    assert.equal(put.body.notes, 'n');
    assert.ok(put.body.modified > created.modified);
    const incompletePut = await call('PUT', `/analytics/queries/${created.id}/`, { name: 'only a name' });
    assert.equal(incompletePut.status, 400);
    assert.deepEqual(Object.keys(incompletePut.body).sort(), ['end', 'metrics', 'start']);

    const patched = await call('PATCH', `/analytics/queries/${created.id}`, { interval: 'raw' });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.interval, 'raw');
    assert.equal(patched.body.aggregation, null, 'switching to raw drops the aggregation');
    assert.equal(patched.body.name, 'Replaced');
    const badPatch = await call('PATCH', `/analytics/queries/${created.id}`, { interval: '1d' });
    assert.equal(badPatch.status, 400);
    assert.ok(badPatch.body.aggregation);
    const badEnd = await call('PATCH', `/analytics/queries/${created.id}`, { end: '2020-01-01T00:00:00Z' });
    assert.equal(badEnd.status, 400);
    assert.equal((await call('GET', `/analytics/queries/${created.id}`)).body.interval, 'raw', 'a refused patch changes nothing');

    assert.equal((await call('DELETE', `/analytics/queries/${created.id}/`)).status, 204);
    assert.equal((await call('GET', `/analytics/queries/${created.id}/`)).status, 404);
  });

  test('a query that an export refers to cannot be deleted (409)', async () => {
    const query = (await call('POST', '/analytics/queries/', definition)).body;
    const exported = await call('POST', '/analytics/export', { name: 'uses it', query: query.id });
    assert.equal(exported.status, 201);
    const response = await call('DELETE', `/analytics/queries/${query.id}/`);
    assert.equal(response.status, 409);
    assert.match(response.body.detail, /referenced by analytics exports/);
    assert.equal((await call('GET', `/analytics/queries/${query.id}/`)).status, 200);
    assert.equal((await call('DELETE', `/analytics/exports/${exported.body.id}/`)).status, 204);
    assert.equal((await call('DELETE', `/analytics/queries/${query.id}/`)).status, 204);
  });

  test('unknown and malformed ids are 404', async () => {
    for (const method of ['GET', 'PUT', 'PATCH', 'DELETE']) {
      for (const id of ['00000000-0000-4000-8000-000000000000', 'nope']) {
        const response = await call(method, `/analytics/queries/${id}/`, method.startsWith('P') ? definition : undefined);
        assert.equal(response.status, 404, `${method} ${id}`);
      }
    }
  });

  test('the list pages newest first and filters by name and tags', async () => {
    const lister = await createUser(sql, 'customer', { customerId: await createCustomer(sql, partnerId) });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await api.request('POST', '/analytics/queries/', {
        key: lister.apiKey,
        body: { ...definition, name: `Q${i}${i % 2 ? ' odd' : ''}`, tags: i < 2 ? ['first'] : [] },
      });
      ids.push(response.body.id);
    }
    const page = await api.request('GET', '/analytics/queries/?limit=2&offset=2', { key: lister.apiKey });
    assert.deepEqual(
      page.body.map((q: { id: string }) => q.id),
      [ids[2], ids[1]],
    );
    assert.match(page.headers.get('link')!, /rel="next"/);
    assert.match(page.headers.get('link')!, /rel="prev"/);
    const odd = await api.request('GET', '/analytics/queries/?name__contains=ODD', { key: lister.apiKey });
    assert.deepEqual(
      odd.body.map((q: { id: string }) => q.id),
      [ids[3], ids[1]],
    );
    const tagged = await api.request('GET', '/analytics/queries/?tags=first', { key: lister.apiKey });
    assert.deepEqual(
      tagged.body.map((q: { id: string }) => q.id),
      [ids[1], ids[0]],
    );
  });
});
