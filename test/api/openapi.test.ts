import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CreateExportBody } from '../../src/api/exports/schemas';
import { jsonSchemaOf } from '../../src/api/openapi';
import { requestSchemaOf } from '../../src/api/openapi-parts';
import { QueryBody } from '../../src/api/queries/schemas';
import { createApp } from '../../src/api/app';
import { EXPORT_ERROR_CODES } from '../../src/db/schema';
import { createTestApi } from '../support/api';
import { createUser } from '../support/fixtures';
import { EXPORT_SPEC_FIELDS } from '../support/spec';

/** /openapi.json describes every route the app serves, from the schemas that validate requests. */

const api = await createTestApi();

describe('GET /openapi.json', () => {
  test('an OpenAPI 3.1 document, public, covering every route and method the app serves', async () => {
    const response = await api.request('GET', '/openapi.json');
    assert.equal(response.status, 200);
    const doc = response.body;
    assert.equal(doc.openapi, '3.1.0');
    const documented = new Set<string>();
    for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const method of Object.keys(item)) {
        if (method !== 'parameters') documented.add(`${method.toUpperCase()} ${path.replace(/\/$/, '').replace(/\{(\w+)\}/g, ':$1')}`);
      }
    }
    const served = createApp(api.context)
      .routes.filter((r) => r.path.startsWith('/analytics') && r.method !== 'ALL')
      .map((r) => `${r.method} ${r.path}`);
    assert.ok(served.length >= 11);
    assert.deepEqual([...new Set(served)].sort(), [...documented].sort());
  });

  test('request bodies are the JSON Schema of the valibot schemas the handlers validate with, defaults in words', async () => {
    const { body: doc } = await api.request('GET', '/openapi.json');
    assert.deepEqual(doc.components.schemas.CreateExport, requestSchemaOf(CreateExportBody));
    assert.deepEqual(doc.components.schemas.Query, requestSchemaOf(QueryBody));
    // A `default` would make generated clients require the field (openapi-typescript's defaults).
    assert.equal((jsonSchemaOf(QueryBody) as { properties: Record<string, { default?: unknown }> }).properties.interval!.default, 'raw');
    assert.equal('default' in doc.components.schemas.Query.properties.interval, false);
    assert.match(doc.components.schemas.Query.properties.interval.description, /Default when absent: `"raw"`/);
    assert.deepEqual(doc.components.schemas.Query.required, ['name', 'metrics', 'start', 'end']);
    const create = doc.components.schemas.CreateExport;
    assert.deepEqual(create.required, ['name', 'query']);
    assert.equal(create.properties.name.maxLength, 100);
    assert.equal(create.properties.tags.items.maxLength, 50);
    assert.equal(create.properties.query.format, 'uuid');
    const resource = doc.components.schemas.AnalyticsExport;
    for (const field of EXPORT_SPEC_FIELDS) {
      assert.ok(resource.required.includes(field), `${field} is always in the resource`);
    }
    assert.equal(resource.required.includes('url'), false);
    assert.deepEqual(resource.properties.status.enum, ['queued', 'running', 'complete', 'failed']);
    assert.ok(doc.paths['/analytics/export'].post.responses['201']);
    assert.ok(doc.paths['/analytics/exports/{id}/'].delete.responses['204']);
  });
});

describe('what generated clients and proxies read', () => {
  test('Bearer and Token are both declared, either one enough', async () => {
    const { body: doc } = await api.request('GET', '/openapi.json');
    assert.deepEqual(doc.security, [{ bearer: [] }, { token: [] }]);
    assert.deepEqual(doc.components.securitySchemes.bearer, { ...doc.components.securitySchemes.bearer, type: 'http', scheme: 'bearer' });
    assert.deepEqual(doc.components.securitySchemes.token, {
      ...doc.components.securitySchemes.token,
      type: 'apiKey',
      in: 'header',
      name: 'Authorization',
    });
    const admin = await createUser(api.db.sql, 'admin');
    const answer = await api.request('GET', '/analytics/metrics/', { headers: { authorization: `Token ${admin.apiKey}` } });
    assert.equal(answer.status, 200, 'the service takes what the token scheme describes');
  });

  test('every path at both spellings, with or without its trailing slash, each operation its own id', async () => {
    const { body: doc } = await api.request('GET', '/openapi.json');
    const paths = Object.keys(doc.paths);
    for (const path of paths) assert.ok(paths.includes(path.endsWith('/') ? path.slice(0, -1) : `${path}/`), `${path}'s twin`);
    const ids = paths.flatMap((path) =>
      Object.values<{ operationId?: string }>(doc.paths[path])
        .map((o) => o.operationId)
        .filter(Boolean),
    );
    assert.equal(new Set(ids).size, ids.length);
  });

  test('types: date-times, integers, enums from the schema module, repeated filters, integer paging', async () => {
    const { body: doc } = await api.request('GET', '/openapi.json');
    const resource = doc.components.schemas.AnalyticsExport.properties;
    for (const field of ['started', 'finished']) assert.deepEqual(resource[field].anyOf[0], { type: 'string', format: 'date-time' });
    assert.deepEqual(resource.progress.properties.rows, { type: 'integer' });
    assert.deepEqual(resource.progress.properties.bytes, { type: 'integer' });
    assert.equal(resource.progress.properties.heartbeat.anyOf[0].format, 'date-time');
    assert.deepEqual(resource.errors.anyOf[0].properties.code.enum, [...EXPORT_ERROR_CODES]);
    for (const field of ['start', 'end']) {
      assert.equal(doc.components.schemas.Query.properties[field].format, 'date-time');
      assert.equal(doc.components.schemas.AnalyticsQuery.properties[field].format, 'date-time');
    }
    const list = Object.fromEntries(doc.paths['/analytics/exports/'].get.parameters.map((p: { name: string }) => [p.name, p]));
    assert.deepEqual(list.status.schema, { type: 'array', items: { type: 'string', enum: ['queued', 'running', 'complete', 'failed'] } });
    assert.equal(list.status.style, 'form');
    assert.equal(list.status.explode, true);
    assert.deepEqual(list.query.schema, { type: 'string', format: 'uuid' });
    assert.deepEqual(list.limit.schema, { type: 'integer', minimum: 1, maximum: 1000, default: 100 });
    assert.equal(list.offset.schema.type, 'integer');
  });

  test('errors: 400 a field map or a detail, 500 and 503 with the request id, on every operation', async () => {
    const { body: doc } = await api.request('GET', '/openapi.json');
    for (const [path, item] of Object.entries<Record<string, { responses?: Record<string, unknown> }>>(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        if (method === 'parameters') continue;
        assert.deepEqual(operation.responses!['500'], { $ref: '#/components/responses/InternalServerError' }, `${method} ${path}`);
        assert.deepEqual(operation.responses!['503'], { $ref: '#/components/responses/ServiceUnavailable' }, `${method} ${path}`);
      }
    }
    assert.deepEqual(doc.components.responses.BadRequest.content['application/json'].schema, {
      anyOf: [{ $ref: '#/components/schemas/FieldErrors' }, { $ref: '#/components/schemas/Detail' }],
    });
    assert.deepEqual(doc.components.schemas.ServerError.required, ['detail', 'request_id']);
  });
});
