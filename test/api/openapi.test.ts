import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CreateExportBody } from '../../src/api/exports/schemas';
import { jsonSchemaOf } from '../../src/api/openapi';
import { requestSchemaOf } from '../../src/api/openapi-parts';
import { QueryBody } from '../../src/api/queries/schemas';
import { createApp } from '../../src/api/app';
import { createTestApi } from '../support/api';
import { EXPORT_SPEC_FIELDS } from '../support/spec';

/** /openapi.json describes every route the app serves, from the schemas that validate requests; /docs shows it offline. */

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

describe('GET /docs', () => {
  test('an HTML page that reads /openapi.json and loads nothing from elsewhere', async () => {
    const response = await api.request('GET', '/docs');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/html/);
    assert.match(response.text, /fetch\('\/openapi\.json'\)/);
    assert.doesNotMatch(response.text, /(src|href)="(https?:)?\/\//, 'no CDN or other host');
  });
});
