import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { createTestApi } from '../support/api';
import { createCustomerWithQuery } from '../support/fixtures';

/**
 * The edges of the input: characters counted as code points, text that has no UTF-8 form,
 * charsets, datetimes outside the range Postgres and the CSV both show, and list fields with no
 * bound. Each is a 400 (or 415) on the field, and nothing is stored or altered.
 */

const api = await createTestApi();
const { sql } = api.db;
const { user, queryId } = await createCustomerWithQuery(sql);

const counts = async () =>
  (await sql`SELECT (SELECT count(*) FROM analytics_exports)::int AS exports, (SELECT count(*) FROM analytics_queries)::int AS queries`)[0];
const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  api.request(method, path, { key: user.apiKey, body, headers });
const createExport = (body: unknown, headers: Record<string, string> = {}) => call('POST', '/analytics/export', body, headers);
const createQuery = (body: unknown) => call('POST', '/analytics/queries/', body);
const definition = { name: 'Edges', metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' };

/** Sends the request and checks it was refused with this status and JSON body, and nothing was stored. */
async function refused(send: () => ReturnType<typeof call>, status: number, fields?: Record<string, RegExp>) {
  const before = await counts();
  const response = await send();
  assert.equal(response.status, status, response.text);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  if (fields) {
    assert.deepEqual(Object.keys(response.body).sort(), Object.keys(fields).sort(), response.text);
    for (const [field, pattern] of Object.entries(fields)) assert.match(response.body[field].join(' '), pattern);
  } else assert.equal(typeof response.body.detail, 'string', response.text);
  assert.deepEqual(await counts(), before, 'nothing stored');
  return response.body;
}

describe('lengths are counted in characters (code points), as the database counts them', () => {
  test('a name of 100 emoji and tags of 50 emoji are stored exactly; one more is a 400', async () => {
    const name = '😀'.repeat(100);
    const tag = '🚀'.repeat(50);
    const created = await createExport({ name, query: queryId, tags: [tag] });
    assert.equal(created.status, 201, created.text);
    const [stored] = await sql`SELECT name, char_length(name) AS length, tags FROM analytics_exports WHERE id = ${created.body.id}`;
    assert.deepEqual({ ...stored }, { name, length: 100, tags: [tag] });
    const query = await createQuery({ ...definition, name, tags: [tag] });
    assert.equal(query.status, 201, query.text);
    assert.equal(query.body.name, name);

    await refused(() => createExport({ name: '😀'.repeat(101), query: queryId }), 400, { name: /no more than 100 characters/ });
    await refused(() => createExport({ name: 'n', query: queryId, tags: ['🚀'.repeat(51)] }), 400, { tags: /no more than 50 characters/ });
    await refused(() => createQuery({ ...definition, name: '😀'.repeat(101) }), 400, { name: /no more than 100 characters/ });
  });
});

describe('text with no UTF-8 form is refused, never stored as U+FFFD', () => {
  // JSON escapes for lone surrogates: JSON.parse accepts them, UTF-8 cannot encode them.
  const cases: Array<[string, string, string]> = [
    ['a lone high surrogate in the name', `{"name": "a\\ud800b", "query": "QUERY"}`, 'name'],
    ['a lone low surrogate in the notes', `{"name": "n", "notes": "\\udc00", "query": "QUERY"}`, 'notes'],
    ['a lone surrogate in a tag', `{"name": "n", "tags": ["ok", "x\\ud83d"], "query": "QUERY"}`, 'tags'],
  ];
  for (const [what, body, field] of cases) {
    test(`export: ${what}`, async () => {
      await refused(() => createExport(body.replace('QUERY', queryId)), 400, { [field]: /surrogate/ });
    });
  }

  test('query: lone surrogates in the name, a metric and the time zone', async () => {
    for (const [field, value] of [
      ['name', '"\\ud800"'],
      ['metrics', '["temperature\\udfff"]'],
      ['timezone', '"Europe/Berlin\\ud800"'],
    ] as const) {
      const body = JSON.stringify({ ...definition, [field]: '@' }).replace('"@"', value);
      await refused(() => createQuery(body), 400, { [field]: /surrogate/ });
    }
  });

  test('a surrogate pair (an emoji spelled as two escapes) is text', async () => {
    const response = await createExport(`{"name": "\\ud83d\\ude00", "query": "${queryId}"}`);
    assert.equal(response.status, 201, response.text);
    assert.equal(response.body.name, '😀');
  });

  test('bytes that are not UTF-8 are a 400', async () => {
    const json = Buffer.from(JSON.stringify({ name: 'n-X', query: queryId }));
    // 0xFF never occurs in UTF-8; 0xC3 alone starts a sequence that never ends.
    for (const bad of [0xff, 0xc3]) {
      const bytes = Buffer.from(json);
      bytes[json.indexOf('X')] = bad;
      const body = await refused(() => createExport(bytes), 400);
      assert.match(body.detail, /not valid UTF-8/);
    }
  });

  test('a body declared in a charset other than UTF-8 is a 415; utf-8 in any spelling is fine', async () => {
    for (const charset of ['latin1', 'ISO-8859-1', 'utf-16', '"windows-1252"']) {
      const body = await refused(
        () => createExport({ name: 'n', query: queryId }, { 'content-type': `application/json; charset=${charset}` }),
        415,
      );
      assert.match(body.detail, /charset/);
    }
    for (const contentType of ['application/json; charset=UTF-8', 'application/json;charset="utf-8"', 'application/json; charset=utf8']) {
      const response = await createExport({ name: 'n', query: queryId }, { 'content-type': contentType });
      assert.equal(response.status, 201, `${contentType}: ${response.text}`);
    }
  });
});

describe('datetimes: from 1900-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z, in UTC after the offset', () => {
  const outOfRange: Array<[string, Record<string, string>, string]> = [
    ['year 1 with a positive offset (year 1 BC in UTC)', { start: '0001-01-01T00:00:00+10:00' }, 'start'],
    ['year 1 in UTC', { start: '0001-01-01T00:00:00Z' }, 'start'],
    ['just before 1900 in UTC', { start: '1900-01-01T00:30:00+01:00' }, 'start'],
    ['year 9999 with a negative offset (year 10000 in UTC)', { end: '9999-12-31T23:59:59-05:00' }, 'end'],
  ];
  for (const [what, times, field] of outOfRange) {
    test(`POST: ${what} is a 400 on ${field}`, async () => {
      await refused(() => createQuery({ ...definition, ...times }), 400, { [field]: /out of range/ });
    });
  }

  test('PATCH and PUT refuse them too, and leave the stored query as it was', async () => {
    const created = await createQuery(definition);
    assert.equal(created.status, 201);
    const path = `/analytics/queries/${created.body.id}/`;
    await refused(() => call('PATCH', path, { start: '0001-01-01T00:00:00+10:00' }), 400, { start: /out of range/ });
    await refused(() => call('PUT', path, { ...definition, end: '9999-12-31T23:59:59-05:00' }), 400, { end: /out of range/ });
    assert.deepEqual((await call('GET', path)).body, created.body);
  });

  test('the edges of the range are accepted and shown as written', async () => {
    const response = await createQuery({ ...definition, start: '1900-01-01T01:00:00+01:00', end: '9999-12-31T18:59:59.999999-05:00' });
    assert.equal(response.status, 201, response.text);
    assert.equal(response.body.start, '1900-01-01T00:00:00.000000Z');
    assert.equal(response.body.end, '9999-12-31T23:59:59.999999Z');
  });
});

describe('list fields are bounded', () => {
  const ids = (n: number) => Array.from({ length: n }, () => randomUUID());
  const tags = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);

  test('tags: at most 100 on exports and queries (100,000 is a 400)', async () => {
    await refused(() => createExport({ name: 'n', query: queryId, tags: tags(101) }), 400, { tags: /no more than 100 elements/ });
    await refused(() => createExport({ name: 'n', query: queryId, tags: tags(100_000) }), 400, { tags: /no more than 100 elements/ });
    await refused(() => createQuery({ ...definition, tags: tags(101) }), 400, { tags: /no more than 100 elements/ });
    const response = await createExport({ name: 'n', query: queryId, tags: tags(100) });
    assert.equal(response.status, 201, response.text);
    assert.equal(response.body.tags.length, 100);
  });

  test('scopes: at most 100 customers and 100 partners', async () => {
    for (const field of ['customer_scopes', 'partner_scopes']) {
      await refused(() => createExport({ name: 'n', query: queryId, [field]: ids(101) }), 400, { [field]: /no more than 100 elements/ });
      await refused(() => createQuery({ ...definition, [field]: ids(101) }), 400, { [field]: /no more than 100 elements/ });
    }
  });

  test('a query names at most 1000 devices and 100 spaces, on POST and PATCH', async () => {
    await refused(() => createQuery({ ...definition, devices: ids(1001) }), 400, { devices: /no more than 1000 elements/ });
    await refused(() => createQuery({ ...definition, spaces: ids(101) }), 400, { spaces: /no more than 100 elements/ });
    const created = await createQuery(definition);
    const path = `/analytics/queries/${created.body.id}/`;
    await refused(() => call('PATCH', path, { devices: ids(1001) }), 400, { devices: /no more than 1000 elements/ });
    await refused(() => call('PATCH', path, { spaces: ids(101), tags: tags(101) }), 400, {
      spaces: /no more than 100 elements/,
      tags: /no more than 100 elements/,
    });
    // Within the bounds, the usual check that each one is visible answers instead.
    await refused(() => createQuery({ ...definition, devices: ids(1000) }), 400, { devices: /./ });
  });

  test('the OpenAPI document states every bound', async () => {
    const { body: doc } = await api.request('GET', '/openapi.json');
    const { CreateExport, Query, QueryPatch } = doc.components.schemas;
    for (const schema of [CreateExport, Query, QueryPatch]) {
      assert.equal(schema.properties.tags.maxItems, 100);
      assert.equal(schema.properties.tags.items.maxLength, 50);
      assert.equal(schema.properties.customer_scopes.maxItems, 100);
      assert.equal(schema.properties.partner_scopes.maxItems, 100);
      assert.equal(schema.properties.name.maxLength, 100);
    }
    for (const schema of [Query, QueryPatch]) {
      assert.equal(schema.properties.devices.maxItems, 1000);
      assert.equal(schema.properties.spaces.maxItems, 100);
    }
    assert.match(Query.properties.start.description, /1900-01-01T00:00:00Z to 9999-12-31T23:59:59\.999999Z/);
    assert.match(Query.properties.end.description, /1900-01-01T00:00:00Z to 9999-12-31T23:59:59\.999999Z/);
  });
});
