import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CreateExportBody } from '../../src/api/exports/schemas';
import { jsonSchemaOf } from '../../src/api/openapi';
import { QueryBody } from '../../src/api/queries/schemas';
import { createApp } from '../../src/api/app';
import { createTestApi } from '../support/api';
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

  test('request bodies are the JSON Schema of the valibot schemas the handlers validate with', async () => {
    const { body: doc } = await api.request('GET', '/openapi.json');
    assert.deepEqual(doc.components.schemas.CreateExport, jsonSchemaOf(CreateExportBody));
    assert.deepEqual(doc.components.schemas.Query, jsonSchemaOf(QueryBody));
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
