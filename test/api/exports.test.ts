import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as v from 'valibot';
import { ExportResource } from '../../src/api/exports/schemas';
import { createTestApi } from '../support/api';
import { markComplete, markFailed, markRunning } from '../support/exports';
import { waitFor } from '../support/wait';
import { createCustomer, createCustomerWithQuery, createQuery, createUser } from '../support/fixtures';
import { EXPORT_SPEC_FIELDS } from '../support/spec';

/**
 * The Analytics Export resource against the spec: its example request and both example
 * responses field by field, the download link, delete, cancel, lists and idempotent create.
 */

const api = await createTestApi();
const { sql } = api.db;
const { partnerId, customerId, user, queryId } = await createCustomerWithQuery(sql);

const SPEC_FIELDS: readonly string[] = EXPORT_SPEC_FIELDS;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const create = (body: unknown, headers: Record<string, string> = {}) =>
  api.request('POST', '/analytics/export', { key: user.apiKey, body, headers });
const get = (id: string) => api.request('GET', `/analytics/exports/${id}/`, { key: user.apiKey });

/** The row's timestamps formatted by Postgres, to compare with what the API said. */
async function storedTimestamps(id: string) {
  const [row] = await sql<{ created: string; modified: string }[]>`
    SELECT to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created,
           to_char(modified AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS modified
      FROM analytics_exports WHERE id = ${id}`;
  return row!;
}

describe('POST /analytics/export', () => {
  test("the spec's example request gets the spec's example response, field by field", async () => {
    const response = await create({ name: 'Export 007', query: queryId });
    assert.equal(response.status, 201);
    assert.match(response.headers.get('content-type')!, /^application\/json/);
    const body = response.body;
    assert.deepEqual(Object.keys(body).slice(0, SPEC_FIELDS.length), SPEC_FIELDS, 'the spec fields, in the spec order');
    assert.match(body.id, UUID);
    assert.match(body.created, TIMESTAMP);
    assert.match(body.modified, TIMESTAMP);
    assert.deepEqual({ created: body.created, modified: body.modified }, await storedTimestamps(body.id));
    assert.equal(body.created_by, user.id);
    assert.equal(body.name, 'Export 007');
    assert.equal(body.notes, '');
    assert.equal(body.query, queryId);
    assert.equal(body.status, 'queued');
    assert.equal(body.errors, null);
    assert.equal(body.number_of_rows, null);
    assert.equal(body.total_bytes, null);
    assert.deepEqual(body.tags, []);
    assert.equal('url' in body, false);
    assert.equal('progress' in body, false);
    assert.deepEqual(body.customer_scopes, [customerId], "a customer user's export defaults to their customer");
    assert.deepEqual(body.partner_scopes, []);
    assert.equal(body.attempts, 0);
    assert.equal(body.started, null);
    assert.equal(body.finished, null);
    v.parse(ExportResource, body);
    const [job] = await sql`SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE key = ${`analytics_export:${body.id}`}`;
    assert.equal(job!.n, 1, 'its job was queued with it');
  });

  test('read-only fields in the input are ignored', async () => {
    const other = await createUser(sql, 'customer', { customerId });
    const response = await create({
      name: 'sneaky',
      query: queryId,
      id: '00000000-0000-4000-8000-000000000000',
      status: 'complete',
      created_by: other.id,
      created: '2000-01-01T00:00:00Z',
      errors: { code: 'x' },
      number_of_rows: 5,
      total_bytes: 7,
      url: 'http://evil.example/x.csv',
    });
    assert.equal(response.status, 201);
    assert.notEqual(response.body.id, '00000000-0000-4000-8000-000000000000');
    assert.equal(response.body.status, 'queued');
    assert.equal(response.body.created_by, user.id);
    assert.equal(response.body.number_of_rows, null);
    assert.equal(response.body.errors, null);
    assert.notEqual(response.body.created.slice(0, 4), '2000');
    assert.equal('url' in response.body, false);
  });

  test('notes and tags are kept', async () => {
    const response = await create({ name: 'tagged', query: queryId, notes: 'for the board', tags: ['monthly', 'x'.repeat(50)] });
    assert.equal(response.status, 201);
    assert.equal(response.body.notes, 'for the board');
    assert.deepEqual(response.body.tags, ['monthly', 'x'.repeat(50)]);
  });

  test('also answers on the path with a trailing slash', async () => {
    const response = await api.request('POST', '/analytics/export/', { key: user.apiKey, body: { name: 'slash', query: queryId } });
    assert.equal(response.status, 201);
  });
});

describe('GET /analytics/exports/{id}/', () => {
  test("a complete export matches the spec's example response, with a url signed on this request for one hour", async () => {
    const { body: created } = await create({ name: 'YumYum DimSum', query: queryId });
    const csv = 'timestamp,device_id,device_name,space_id,space_name,metric,value\n2026-01-01T00:00:00Z,d,D,s,S,temperature,21.5\n';
    await markComplete(sql, api.bucket, created.id, csv);

    const before = Date.now();
    const response = await get(created.id);
    assert.equal(response.status, 200);
    const body = response.body;
    assert.deepEqual(Object.keys(body).slice(0, SPEC_FIELDS.length + 1), [...SPEC_FIELDS, 'url']);
    assert.equal(body.id, created.id);
    assert.equal(body.created, created.created);
    assert.match(body.modified, TIMESTAMP);
    assert.ok(body.modified > body.created, 'modified moves with the status');
    assert.equal(body.created_by, user.id);
    assert.equal(body.name, 'YumYum DimSum');
    assert.equal(body.notes, '');
    assert.equal(body.query, queryId);
    assert.equal(body.status, 'complete');
    assert.equal(body.errors, null);
    assert.equal(body.number_of_rows, 1);
    assert.equal(body.total_bytes, Buffer.byteLength(csv));
    assert.deepEqual(body.tags, []);
    assert.match(body.finished, TIMESTAMP);
    v.parse(ExportResource, body);

    const url = new URL(body.url);
    assert.equal(url.searchParams.get('X-Amz-Expires'), '3600');
    const signedAt = Date.parse(
      url.searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
    );
    assert.ok(signedAt >= before - 1000 && signedAt <= Date.now(), 'signed on this request');
    assert.equal(
      Date.parse(body.url_expires),
      signedAt + 3600_000 + (Date.parse(body.url_expires) % 1000),
      'url_expires is an hour after signing',
    );
    assert.ok(Math.abs(Date.parse(body.url_expires) - (before + 3600_000)) < 5000);

    const download = await fetch(body.url);
    assert.equal(download.status, 200);
    assert.equal(await download.text(), csv);
  });

  test('every GET signs a new url (two GETs a second apart)', async () => {
    const { body: created } = await create({ name: 'twice', query: queryId });
    await markComplete(sql, api.bucket, created.id, 'a\n1\n');
    const first = (await get(created.id)).body;
    // SigV4 signs to the second (X-Amz-Date): two signatures within one second are identical
    // by construction, so the second GET waits past the next second boundary.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = (await get(created.id)).body;
    assert.notEqual(first.url, second.url);
    assert.ok(Date.parse(second.url_expires) > Date.parse(first.url_expires));
    assert.notEqual(new URL(first.url).searchParams.get('X-Amz-Date'), new URL(second.url).searchParams.get('X-Amz-Date'));
  });

  test('no url in any other state, nor in lists', async () => {
    const queued = (await create({ name: 'q', query: queryId })).body.id;
    const running = (await create({ name: 'r', query: queryId })).body.id;
    await markRunning(sql, running, { rows: 12, bytes: 345 });
    const failed = (await create({ name: 'f', query: queryId })).body.id;
    await markFailed(sql, failed, { code: 'query_error', message: 'division by zero' });
    const complete = (await create({ name: 'c', query: queryId })).body.id;
    await markComplete(sql, api.bucket, complete, 'a\n1\n');

    for (const id of [queued, running, failed]) {
      const body = (await get(id)).body;
      assert.equal('url' in body, false, `${body.status} has no url`);
      assert.equal('url_expires' in body, false);
    }
    const runningBody = (await get(running)).body;
    assert.equal(runningBody.status, 'running');
    assert.equal(runningBody.progress.rows, 12);
    assert.equal(runningBody.progress.bytes, 345);
    assert.match(runningBody.progress.heartbeat, TIMESTAMP);
    assert.match(runningBody.started, TIMESTAMP);
    assert.equal(runningBody.attempts, 1);

    const failedBody = (await get(failed)).body;
    assert.deepEqual(failedBody.errors, { code: 'query_error', message: 'division by zero' });
    assert.equal(failedBody.number_of_rows, null);

    const list = await api.request('GET', '/analytics/exports/?limit=1000', { key: user.apiKey });
    const listed = list.body.find((e: { id: string }) => e.id === complete);
    assert.equal(listed.status, 'complete');
    assert.equal('url' in listed, false);
  });

  test('unknown and malformed ids are 404 with a JSON body', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', "1' OR '1'='1", '%00']) {
      const response = await get(encodeURIComponent(id));
      assert.equal(response.status, 404, id);
      assert.deepEqual(response.body, { detail: 'Not found.' });
    }
  });

  test('answers with and without the trailing slash', async () => {
    const id = (await create({ name: 'slashes', query: queryId })).body.id;
    assert.equal((await api.request('GET', `/analytics/exports/${id}`, { key: user.apiKey })).status, 200);
    assert.equal((await api.request('GET', `/analytics/exports/${id}/`, { key: user.apiKey })).status, 200);
    assert.equal((await api.request('GET', '/analytics/exports', { key: user.apiKey })).status, 200);
  });
});

describe('DELETE /analytics/exports/{id}/', () => {
  test('204; the download that worked stops working, and the export is gone', async () => {
    const id = (await create({ name: 'doomed', query: queryId })).body.id;
    await markComplete(sql, api.bucket, id, 'a\n1\n');
    const { url } = (await get(id)).body;
    assert.equal((await fetch(url)).status, 200);

    const response = await api.request('DELETE', `/analytics/exports/${id}/`, { key: user.apiKey });
    assert.equal(response.status, 204);
    assert.equal(response.text, '');
    assert.equal((await fetch(url)).status, 404);
    assert.equal((await get(id)).status, 404);
    assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${id}`).length, 0);
    assert.equal((await api.request('DELETE', `/analytics/exports/${id}`, { key: user.apiKey })).status, 404);
  });

  test('a queued export is cancelled and deleted', async () => {
    const id = (await create({ name: 'queued', query: queryId })).body.id;
    assert.equal((await api.request('DELETE', `/analytics/exports/${id}`, { key: user.apiKey })).status, 204);
    assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${id}`).length, 0);
  });

  test('a running export is told to stop and deleted at once: DELETE does not wait for its worker', async () => {
    const id = (await create({ name: 'running', query: queryId })).body.id;
    await markRunning(sql, id);
    const told: string[] = [];
    const listener = await sql.listen('analytics_export_cancel', (exportId) => void told.push(exportId));
    try {
      const response = await api.request('DELETE', `/analytics/exports/${id}/`, { key: user.apiKey });
      assert.equal(response.status, 204);
      assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${id}`).length, 0);
      // Its worker removes what its attempt wrote once it has stopped; the orphan sweep, anything left.
      await waitFor(() => (told.includes(id) ? true : undefined), 5000, 'the cancel NOTIFY');
    } finally {
      await listener.unlisten();
    }
  });
});

describe('PUT and PATCH', () => {
  test('are 405 with an Allow header, with and without the trailing slash', async () => {
    const id = (await create({ name: 'immutable', query: queryId })).body.id;
    for (const method of ['PUT', 'PATCH']) {
      for (const path of [`/analytics/exports/${id}/`, `/analytics/exports/${id}`]) {
        const response = await api.request(method, path, { key: user.apiKey, body: { name: 'changed' } });
        assert.equal(response.status, 405, `${method} ${path}`);
        const allow = response.headers.get('allow')!.split(/,\s*/).sort();
        assert.deepEqual(allow, ['DELETE', 'GET', 'HEAD']);
        assert.equal(typeof response.body.detail, 'string');
      }
    }
    const list = await api.request('PUT', '/analytics/exports/', { key: user.apiKey, body: {} });
    assert.equal(list.status, 405);
    assert.ok(list.headers.get('allow')!.includes('GET'));
    assert.equal((await get(id)).body.name, 'immutable');
  });
});

describe('POST /analytics/exports/{id}/cancel/ (extension)', () => {
  test('fails a queued export at once (200)', async () => {
    const id = (await create({ name: 'to cancel', query: queryId })).body.id;
    const response = await api.request('POST', `/analytics/exports/${id}/cancel/`, { key: user.apiKey });
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'failed');
    assert.equal(response.body.errors.code, 'cancelled');
  });

  test('asks the worker to stop a running export (202)', async () => {
    const id = (await create({ name: 'running cancel', query: queryId })).body.id;
    await markRunning(sql, id);
    const response = await api.request('POST', `/analytics/exports/${id}/cancel`, { key: user.apiKey });
    assert.equal(response.status, 202);
    assert.equal(response.body.status, 'running');
    const [row] = await sql`SELECT cancel_requested_at FROM analytics_exports WHERE id = ${id}`;
    assert.notEqual(row!.cancel_requested_at, null);
  });

  test('409 for an export that has already finished', async () => {
    const id = (await create({ name: 'done', query: queryId })).body.id;
    await markComplete(sql, api.bucket, id, 'a\n');
    const response = await api.request('POST', `/analytics/exports/${id}/cancel/`, { key: user.apiKey });
    assert.equal(response.status, 409);
    assert.match(response.body.detail, /already complete/);
  });
});

// A user of its own, so that other tests' exports do not show up in these lists.
const lister = await createUser(sql, 'customer', { customerId: await createCustomer(sql, partnerId) });
const listerQuery = await createQuery(
  sql,
  lister.id,
  { metrics: ['energy'], start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' },
  { customerScopes: [lister.customerId!] },
);
const otherQuery = await createQuery(
  sql,
  lister.id,
  { metrics: ['energy'], start: '2026-01-01T00:00:00Z', end: '2026-01-03T00:00:00Z' },
  { customerScopes: [lister.customerId!] },
);
const ids: string[] = [];
for (let i = 0; i < 7; i++) {
  const response = await api.request('POST', '/analytics/export', {
    key: lister.apiKey,
    body: {
      name: `Report ${i}${i % 2 ? ' 50%_off' : ''}`,
      query: i === 6 ? otherQuery : listerQuery,
      tags: i < 3 ? ['weekly', 'ops'] : ['monthly'],
    },
  });
  ids.push(response.body.id);
}
await markRunning(sql, ids[5]!);
const list = (query: string) => api.request('GET', `/analytics/exports/${query}`, { key: lister.apiKey });

describe('GET /analytics/exports/', () => {
  test('newest first, as a JSON array', async () => {
    const response = await list('');
    assert.equal(response.status, 200);
    assert.ok(Array.isArray(response.body));
    assert.deepEqual(
      response.body.map((e: { id: string }) => e.id),
      [...ids].reverse(),
    );
    assert.equal(response.headers.get('link'), null, 'one page: no links');
  });

  test('limit and offset page through it with Link headers, no row twice or missed', async () => {
    const seen: string[] = [];
    let next: string | undefined = '/analytics/exports/?limit=3';
    let pages = 0;
    while (next) {
      const response = await api.request('GET', next, { key: lister.apiKey });
      assert.equal(response.status, 200);
      assert.ok(response.body.length <= 3);
      seen.push(...response.body.map((e: { id: string }) => e.id));
      const link = response.headers.get('link') ?? '';
      if (pages > 0) assert.match(link, /rel="prev"/);
      const match = /<([^>]+)>; rel="next"/.exec(link);
      next = match ? new URL(match[1]!).pathname + new URL(match[1]!).search : undefined;
      pages++;
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...ids].reverse());

    const middle = await list('?limit=2&offset=2&name__contains=Report');
    const link = middle.headers.get('link')!;
    assert.match(link, /offset=4[^>]*>; rel="next"/);
    assert.match(link, /offset=0[^>]*>; rel="prev"/);
    assert.match(link, /name__contains=Report/, 'filters are kept in the links');
  });

  test('limit defaults to 100 and may not exceed 1000; bad paging is 400', async () => {
    assert.equal((await list('?limit=1000')).status, 200);
    for (const bad of ['?limit=1001', '?limit=0', '?limit=abc', '?offset=-1', '?limit=1.5']) {
      const response = await list(bad);
      assert.equal(response.status, 400, bad);
      assert.ok(Array.isArray(response.body.limit ?? response.body.offset), bad);
    }
  });

  test('filters: status, tags, name__contains, query', async () => {
    const idsOf = async (query: string) => {
      const response = await list(query);
      assert.equal(response.status, 200, query);
      return response.body.map((e: { id: string }) => e.id).sort();
    };
    assert.deepEqual(await idsOf('?status=running'), [ids[5]]);
    assert.deepEqual(await idsOf('?status=queued,running'), [...ids].sort());
    assert.deepEqual(await idsOf('?status=queued&status=running'), [...ids].sort());
    assert.deepEqual(await idsOf('?tags=weekly'), ids.slice(0, 3).sort());
    assert.deepEqual(await idsOf('?tags=weekly,ops'), ids.slice(0, 3).sort());
    assert.deepEqual(await idsOf('?tags=weekly,monthly'), []);
    assert.deepEqual(await idsOf(`?name__contains=${encodeURIComponent('50%_OFF')}`), [ids[1], ids[3], ids[5]].sort());
    assert.deepEqual(await idsOf('?name__contains=%25'), [ids[1], ids[3], ids[5]].sort(), 'a % is a character, not a wildcard');
    assert.deepEqual(await idsOf(`?query=${otherQuery}`), [ids[6]]);
    assert.equal((await list('?status=done')).status, 400);
    assert.deepEqual(Object.keys((await list('?status=done')).body), ['status']);
    assert.equal((await list('?query=nope')).status, 400);
  });
});

describe('Idempotency-Key (extension)', () => {
  test('the same key and body answer 200 with the same export; another body is 409', async () => {
    const key = { 'Idempotency-Key': `key-${Date.now()}` };
    const first = await create({ name: 'once', query: queryId, tags: ['a'] }, key);
    assert.equal(first.status, 201);
    const again = await create({ tags: ['a'], query: queryId, name: 'once' }, key);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);
    const different = await create({ name: 'twice', query: queryId }, key);
    assert.equal(different.status, 409);
    assert.equal(typeof different.body.detail, 'string');
    const [row] = await sql`SELECT count(*)::int AS n FROM analytics_exports WHERE idempotency_key = ${key['Idempotency-Key']}`;
    assert.equal(row!.n, 1);
  });

  test('concurrent requests with one key create one export', async () => {
    const key = { 'Idempotency-Key': `race-${Date.now()}` };
    const responses = await Promise.all(Array.from({ length: 5 }, () => create({ name: 'race', query: queryId }, key)));
    assert.deepEqual(responses.map((r) => r.status).sort(), [200, 200, 200, 200, 201]);
    assert.equal(new Set(responses.map((r) => r.body.id)).size, 1);
  });

  test('a key is kept 24 hours, then it may be used again', async () => {
    const key = { 'Idempotency-Key': `old-${Date.now()}` };
    const first = await create({ name: 'yesterday', query: queryId }, key);
    await sql`UPDATE analytics_exports SET created = created - interval '25 hours' WHERE id = ${first.body.id}`;
    const second = await create({ name: 'today', query: queryId }, key);
    assert.equal(second.status, 201);
    assert.notEqual(second.body.id, first.body.id);
  });

  test('without the header, every POST creates a new export', async () => {
    const a = await create({ name: 'same', query: queryId });
    const b = await create({ name: 'same', query: queryId });
    assert.notEqual(a.body.id, b.body.id);
  });
});
