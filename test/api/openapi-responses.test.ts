import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { createApp } from '../../src/api/app';
import { createDatabase } from '../../src/db/client';
import { createTestApi, type ApiResponse, type RequestOptions, type TestApi } from '../support/api';
import { createTestDatabase } from '../support/database';
import { testEnvironment } from '../support/environment';
import { markComplete, markRunning } from '../support/exports';
import { createCustomer, createDevice, createPartner, createSpace, createUser, type TestUser } from '../support/fixtures';
import { openApiResponseValidator } from '../support/openapi-validator';

/**
 * Every response of a flow that meets every status the served /openapi.json documents, each
 * checked against the document by a JSON Schema validator (test/support/openapi-validator.ts):
 * status documented for the operation, body valid against its schema, documented headers there.
 */

// Its own data directory: the webhook secrets' key file is made there.
const dataDir = await fs.mkdtemp(path.join(testEnvironment.tmpDir, 'openapi-responses-'));
const api = await createTestApi({ environment: { DATA_DIR: dataDir } });
const { sql } = api.db;
const { body: document } = await api.request('GET', '/openapi.json');
const validator = openApiResponseValidator(document);

const partnerId = await createPartner(sql);
const c1 = await createCustomer(sql, partnerId);
const c2 = await createCustomer(sql, partnerId);
const alice = await createUser(sql, 'customer', { customerId: c1 });
const partner = await createUser(sql, 'partner', { partnerId });
const building = await createSpace(sql, c1, { name: 'Building' });
await createSpace(sql, c1, { name: 'Floor', parentId: building });
const device = await createDevice(sql, c1, { spaceId: building });

/** A request through `target`'s app, its response checked against the document. */
async function call(user: TestUser | undefined, method: string, path: string, options: RequestOptions = {}, target: TestApi = api) {
  const response = await target.request(method, path, { ...options, key: user?.apiKey });
  validator.check(method, path, response);
  return response;
}
const expect = async (status: number, response: Promise<ApiResponse>) => {
  const answered = await response;
  assert.equal(answered.status, status, answered.text);
  return answered;
};

const definition = {
  name: 'Power',
  metrics: ['active_power'],
  devices: [device],
  start: '2026-01-01T00:00:00Z',
  end: '2026-01-02T00:00:00Z',
};
const tooLarge = JSON.stringify({ name: 'x', notes: 'x'.repeat(1024 * 1024) });
/** A path for an operation, its {id} an id nobody has. */
const concrete = (path: string) => path.replace('{id}', randomUUID());

test('every operation, at either spelling of its path: 401 without a key, 404 for an unknown id', async () => {
  for (const operation of validator.operations) {
    await expect(401, call(undefined, operation.method, concrete(operation.path)));
    if (operation.path.includes('{id}')) {
      const body = operation.hasBody ? (operation.method === 'PATCH' ? {} : definition) : undefined;
      await expect(404, call(alice, operation.method, concrete(operation.path), { body }));
    }
  }
});

test('every operation with a body: 400 for malformed JSON and for a non-object, 413 over 1 MiB, 415 not JSON', async () => {
  for (const operation of validator.operations.filter((o) => o.hasBody)) {
    const path = concrete(operation.path);
    await expect(400, call(alice, operation.method, path, { body: '{"name": ' }));
    await expect(400, call(alice, operation.method, path, { body: '["a list"]' }));
    await expect(413, call(alice, operation.method, path, { body: tooLarge }));
    await expect(415, call(alice, operation.method, path, { body: 'name=x', headers: { 'content-type': 'text/plain' } }));
  }
});

test('Analytics Queries: 201, 200, 400 field maps, 403, 409 and 204', async () => {
  const created = await expect(201, call(alice, 'POST', '/analytics/queries/', { body: definition }));
  const id = created.body.id;
  await expect(
    400,
    call(alice, 'POST', '/analytics/queries/', { body: { ...definition, metrics: ['nope'], end: '2025-01-01T00:00:00Z' } }),
  );
  await expect(200, call(alice, 'GET', '/analytics/queries/?limit=1&tags=a&tags=b'));
  await expect(200, call(alice, 'GET', '/analytics/queries/'));
  await expect(400, call(alice, 'GET', '/analytics/queries/?limit=zero'));
  await expect(200, call(alice, 'GET', `/analytics/queries/${id}/`));
  await expect(200, call(alice, 'GET', `/analytics/queries/${id}`));
  await expect(200, call(alice, 'GET', '/analytics/queries'));
  await expect(200, call(alice, 'PUT', `/analytics/queries/${id}/`, { body: { ...definition, interval: '1h', aggregation: 'avg' } }));
  await expect(400, call(alice, 'PUT', `/analytics/queries/${id}/`, { body: { name: 'no definition' } }));
  await expect(200, call(alice, 'PATCH', `/analytics/queries/${id}/`, { body: { interval: 'raw' } }));
  await expect(400, call(alice, 'PATCH', `/analytics/queries/${id}/`, { body: { interval: 'weekly' } }));

  // The partner's query shared with both its customers: Alice sees it but does not reach c2.
  const shared = await expect(201, call(partner, 'POST', '/analytics/queries/', { body: { ...definition, customer_scopes: [c1, c2] } }));
  const sharedPath = `/analytics/queries/${shared.body.id}/`;
  await expect(403, call(alice, 'PUT', sharedPath, { body: definition }));
  await expect(403, call(alice, 'PATCH', sharedPath, { body: { name: 'mine' } }));
  await expect(403, call(alice, 'DELETE', sharedPath));

  await expect(201, call(alice, 'POST', '/analytics/export', { body: { name: 'uses it', query: id } }));
  await expect(409, call(alice, 'DELETE', `/analytics/queries/${id}/`));
  await expect(204, call(partner, 'DELETE', sharedPath.slice(0, -1)));
  const unused = (await expect(201, call(alice, 'POST', '/analytics/queries/', { body: definition }))).body.id;
  await expect(204, call(alice, 'DELETE', `/analytics/queries/${unused}/`));
});

test('Analytics Exports: 201, the 200 replay and 409 of Idempotency-Key, states, cancel 200/202/409, 403 and 204', async () => {
  const query = (await expect(201, call(alice, 'POST', '/analytics/queries/', { body: definition }))).body.id;
  const create = (body: unknown, key?: string) =>
    call(alice, 'POST', '/analytics/export', { body, headers: key ? { 'idempotency-key': key } : {} });
  const queued = (await expect(201, create({ name: 'Export 007', query }, 'k1'))).body.id;
  await expect(200, create({ name: 'Export 007', query }, 'k1'));
  await expect(409, create({ name: 'Another', query }, 'k1'));
  await expect(400, create({ name: '', query: 'not-a-uuid' }));

  const running = (await expect(201, create({ name: 'running', query }))).body.id;
  await markRunning(sql, running, { rows: 10, bytes: 200 });
  const complete = (await expect(201, create({ name: 'complete', query }))).body.id;
  await markComplete(sql, api.bucket, complete, 'timestamp,device_id,device_name,space_id,space_name,metric,value\n');
  for (const id of [queued, running, complete]) await expect(200, call(alice, 'GET', `/analytics/exports/${id}/`));
  await expect(200, call(alice, 'GET', `/analytics/exports/?status=queued&status=running&query=${query}&limit=2`));
  await expect(200, call(alice, 'GET', '/analytics/exports/?status=complete,failed&tags=x&name__contains=run'));
  await expect(400, call(alice, 'GET', '/analytics/exports/?status=done'));

  await expect(200, call(alice, 'POST', `/analytics/exports/${queued}/cancel`));
  const another = (await expect(201, create({ name: 'cancelled', query }))).body.id;
  await expect(200, call(alice, 'POST', `/analytics/exports/${another}/cancel/`));
  await expect(202, call(alice, 'POST', `/analytics/exports/${running}/cancel/`));
  await expect(409, call(alice, 'POST', `/analytics/exports/${complete}/cancel/`));
  // Failed now, with its errors.
  await expect(200, call(alice, 'GET', `/analytics/exports/${queued}/`));

  // The partner's export for c1 within its own partner: Alice sees it but does not reach the partner scope.
  const partnerQuery = (await expect(201, call(partner, 'POST', '/analytics/queries/', { body: { ...definition, customer_scopes: [c1] } })))
    .body.id;
  const body = { name: 'partner’s', query: partnerQuery, customer_scopes: [c1], partner_scopes: [partnerId] };
  const shared = (await expect(201, call(partner, 'POST', '/analytics/export', { body }))).body.id;
  await expect(403, call(alice, 'POST', `/analytics/exports/${shared}/cancel/`));
  await expect(403, call(alice, 'DELETE', `/analytics/exports/${shared}/`));
  await expect(200, call(alice, 'GET', `/analytics/exports/${complete}`));
  await expect(200, call(alice, 'GET', `/analytics/exports/${complete}/?wait=1`));
  await expect(400, call(alice, 'GET', `/analytics/exports/${complete}/?wait=61`));
  await expect(200, call(alice, 'GET', '/analytics/exports'));
  await expect(204, call(alice, 'DELETE', `/analytics/exports/${complete}`));
  await expect(204, call(alice, 'DELETE', `/analytics/exports/${running}/`));
});

test('webhook secret: 201 with the secret, at both spellings', async () => {
  const created = await expect(201, call(alice, 'POST', '/analytics/webhook-secret/'));
  assert.match(created.body.secret, /^whsec_/);
  await expect(201, call(alice, 'POST', '/analytics/webhook-secret'));
});

test('discovery: 200 pages and 400 on a bad filter', async () => {
  await expect(200, call(alice, 'GET', '/analytics/metrics/?limit=2&offset=1'));
  await expect(200, call(alice, 'GET', '/analytics/metrics'));
  await expect(200, call(alice, 'GET', '/analytics/devices'));
  await expect(200, call(alice, 'GET', '/analytics/spaces'));
  await expect(400, call(alice, 'GET', '/analytics/metrics/?offset=-1'));
  await expect(200, call(alice, 'GET', `/analytics/devices/?space=${building}&name__contains=e`));
  await expect(200, call(partner, 'GET', '/analytics/devices/'));
  await expect(400, call(alice, 'GET', '/analytics/devices/?space=x'));
  await expect(200, call(alice, 'GET', `/analytics/spaces/?parent=${building}`));
  await expect(200, call(alice, 'GET', '/analytics/spaces/?parent=null'));
  await expect(400, call(alice, 'GET', '/analytics/spaces/?parent=x'));
});

test('503 with Retry-After when the database is away, 500 with the request id when it fails otherwise', async () => {
  // A service whose database is not there: nothing listens on port 1.
  const away = createDatabase('postgres://nobody@127.0.0.1:1/nothing');
  try {
    const app = createApp({ ...api.context, database: away });
    const through = { ...api, request: appRequest(app) };
    const response = await expect(503, call(alice, 'GET', '/analytics/exports/', {}, through));
    assert.ok(response.body.request_id);
  } finally {
    await away.close();
  }
  // A database whose metric catalogue is missing: the statement fails, and nothing says why to the client.
  const broken = await createTestDatabase();
  const user = await createUser(broken.sql, 'admin');
  await broken.sql`ALTER TABLE metrics RENAME TO metrics_elsewhere`;
  const through = { ...api, request: appRequest(createApp({ ...api.context, database: broken })) };
  const response = await expect(500, call(user, 'GET', '/analytics/metrics/', {}, through));
  assert.equal(response.body.detail, 'Internal server error.');
});

test('every documented status of every operation was met, each response as documented', () => {
  assert.deepEqual(validator.problems, []);
  const missing: string[] = [];
  for (const operation of validator.operations) {
    const seen = validator.covered.get(operation.operationId) ?? new Set();
    // The twins (trailing slash added or removed) are the same handlers: one answer from the
    // handler each is enough (401 comes before routing, and 404 could be the route's absence).
    const twin = /With(out)?Slash$/.test(operation.operationId);
    if (twin && ![...seen].some((status) => status !== '401' && status !== '404')) missing.push(`${operation.operationId}: not routed`);
    // 500 and 503 come from the one error handler every route shares: met once above.
    const expected = twin ? [] : operation.statuses.filter((status) => status !== '500' && status !== '503');
    for (const status of expected) if (!seen.has(status)) missing.push(`${operation.operationId} ${status}`);
    if (seen.size === 0) missing.push(`${operation.operationId}: no response`);
  }
  assert.deepEqual(missing, []);
  const all = new Set([...validator.covered.values()].flatMap((statuses) => [...statuses]));
  for (const status of ['500', '503']) assert.ok(all.has(status), `${status} met`);
});

/** TestApi.request for another app (same conventions: Bearer key, JSON bodies). */
function appRequest(app: ReturnType<typeof createApp>): TestApi['request'] {
  return async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    const response = await app.request(`http://api.test${path}`, { method, headers });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined, text };
  };
}
