import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { type ApiResponse, createTestApi } from '../support/api';
import { createCustomerWithQuery, createUser } from '../support/fixtures';

/**
 * Bad input gets a clear error in the platform's style, nothing is stored, every error body is
 * JSON, and the service stays healthy through all of it.
 */

/** Log lines the API writes, to see what an operator would. */
const logLines: Array<Record<string, unknown>> = [];
const api = await createTestApi({
  logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) }),
});
const { sql } = api.db;
const { customerId, user, queryId } = await createCustomerWithQuery(sql);
/** One export of `user`'s, for the paths that name one. */
const mine = (await api.request('POST', '/analytics/export', { key: user.apiKey, body: { name: 'mine', query: queryId } })).body;

const exportCount = async () => (await sql`SELECT count(*)::int AS n FROM analytics_exports`)[0]!.n as number;
const queryCount = async () => (await sql`SELECT count(*)::int AS n FROM analytics_queries`)[0]!.n as number;
const post = (body: unknown, headers: Record<string, string> = {}) =>
  api.request('POST', '/analytics/export', { key: user.apiKey, body, headers });

/** Sends the request and checks it was refused with this status, JSON, and stored nothing. */
async function refused(send: () => ReturnType<typeof post>, status: number) {
  const [exportsBefore, queriesBefore] = [await exportCount(), await queryCount()];
  const response = await send();
  assert.equal(response.status, status, response.text);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(typeof response.body, 'object');
  assert.equal(await exportCount(), exportsBefore, 'no export stored');
  assert.equal(await queryCount(), queriesBefore, 'no query stored');
  return response.body;
}

describe('field problems: 400 {"field": ["message"]}', () => {
  const cases: Array<[string, unknown, Record<string, RegExp>]> = [
    ['missing name', { query: queryId }, { name: /required/ }],
    ['empty name', { name: '', query: queryId }, { name: /may not be blank/ }],
    ['blank name', { name: '   ', query: queryId }, { name: /may not be blank/ }],
    ['null name', { name: null, query: queryId }, { name: /may not be null/ }],
    ['name over 100 characters', { name: 'x'.repeat(101), query: queryId }, { name: /no more than 100 characters/ }],
    ['name of the wrong type', { name: 7, query: queryId }, { name: /Not a valid string/ }],
    ['a tag over 50 characters', { name: 'n', query: queryId, tags: ['ok', 'y'.repeat(51)] }, { tags: /no more than 50 characters/ }],
    ['tags not a list', { name: 'n', query: queryId, tags: 'weekly' }, { tags: /list/ }],
    ['a tag of the wrong type', { name: 'n', query: queryId, tags: [1] }, { tags: /Not a valid string/ }],
    ['notes of the wrong type', { name: 'n', query: queryId, notes: ['x'] }, { notes: /Not a valid string/ }],
    ['missing query', { name: 'n' }, { query: /required/ }],
    ['query not a uuid', { name: 'n', query: 'seven' }, { query: /valid UUID/ }],
    ['query of the wrong type', { name: 'n', query: 7 }, { query: /Not a valid string/ }],
    ['query not found', { name: 'n', query: '00000000-0000-4000-8000-000000000000' }, { query: /does not exist/ }],
    ['a NUL character', { name: 'a\u0000b', query: queryId }, { name: /Null characters/ }],
    ['a scope not a uuid', { name: 'n', query: queryId, customer_scopes: ['x'] }, { customer_scopes: /valid UUID/ }],
    ['two fields at once', { name: '', query: 'x' }, { name: /blank/, query: /UUID/ }],
  ];
  for (const [what, body, expected] of cases) {
    test(what, async () => {
      const errors = await refused(() => post(body), 400);
      assert.deepEqual(Object.keys(errors).sort(), Object.keys(expected).sort());
      for (const [field, pattern] of Object.entries(expected)) {
        assert.ok(Array.isArray(errors[field]), `${field} has a list of messages`);
        assert.ok(errors[field].every((m: unknown) => typeof m === 'string'));
        assert.match(errors[field].join(' '), pattern);
      }
    });
  }

  test('exactly 100 characters and 50-character tags are fine', async () => {
    const response = await post({ name: 'x'.repeat(100), query: queryId, tags: ['y'.repeat(50)] });
    assert.equal(response.status, 201);
  });
});

describe('malformed bodies: 400 {"detail": ...}, 415, 413', () => {
  for (const [what, body] of [
    ['malformed JSON', '{"name": "x",'],
    ['empty body', ''],
    ['an array', '[{"name": "x"}]'],
    ['a string', '"hello"'],
    ['null', 'null'],
    ['a number', '42'],
  ] as const) {
    test(what, async () => {
      const errors = await refused(() => post(body), 400);
      assert.deepEqual(Object.keys(errors), ['detail']);
      assert.equal(typeof errors.detail, 'string');
    });
  }

  test('a body that is not JSON is 415', async () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const errors = await refused(() => post('name=x', { 'content-type': contentType }), 415);
      assert.match(errors.detail, /Unsupported media type/);
    }
    const noType = await refused(() => api.request('POST', '/analytics/export', { key: user.apiKey, body: undefined }), 415);
    assert.match(noType.detail, /Content-Type/);
    assert.equal(
      (await post(JSON.stringify({ name: 'charset', query: queryId }), { 'content-type': 'application/json; charset=utf-8' })).status,
      201,
    );
  });

  test('a body over 1 MiB is 413, with or without a Content-Length', async () => {
    const big = JSON.stringify({ name: 'big', query: queryId, notes: 'x'.repeat(1024 * 1024) });
    const errors = await refused(() => post(big, { 'content-length': String(Buffer.byteLength(big)) }), 413);
    assert.match(errors.detail, /1 MiB/);
    await refused(() => post(big), 413);
    // Just under the limit is accepted.
    const fits = JSON.stringify({ name: 'fits', query: queryId, notes: 'x'.repeat(1024 * 1024 - 200) });
    assert.equal((await post(fits)).status, 201);
  });
});

describe('auth', () => {
  test('no key, a bad key, a revoked key: 401 JSON with a challenge', async () => {
    const revoked = await createUser(sql, 'customer', { customerId });
    await sql`UPDATE api_keys SET revoked = now() WHERE user_id = ${revoked.id}`;
    for (const authorization of [undefined, 'Bearer nope', 'Basic dXNlcjpwYXNz', 'Bearer', `Bearer ${revoked.apiKey}`, user.apiKey]) {
      for (const [method, path] of [
        ['GET', '/analytics/exports/'],
        ['POST', '/analytics/export'],
        ['GET', '/analytics/queries/'],
        ['DELETE', `/analytics/exports/00000000-0000-4000-8000-000000000000/`],
        // GET of one export checks the key in its own statement (src/api/middleware/auth.ts):
        // still 401 before anything about the export or the request is told.
        ['GET', `/analytics/exports/${mine.id}/`],
        ['GET', '/analytics/exports/00000000-0000-4000-8000-000000000000'],
        ['GET', '/analytics/exports/not-a-uuid/'],
        ['GET', `/analytics/exports/${mine.id}/?wait=forever`],
      ] as const) {
        const headers: Record<string, string> = authorization ? { authorization } : {};
        const errors = await refused(
          () => api.request(method, path, { headers, body: method === 'POST' ? { name: 'x', query: queryId } : undefined }),
          401,
        );
        assert.equal(typeof errors.detail, 'string');
      }
    }
    const response = await api.request('GET', '/analytics/exports/');
    assert.match(response.headers.get('www-authenticate')!, /^Bearer/);
  });

  test('HEAD of one export with a bad or revoked key is 401 too', async () => {
    const revoked = await createUser(sql, 'customer', { customerId });
    await sql`UPDATE api_keys SET revoked = now() WHERE user_id = ${revoked.id}`;
    for (const key of ['nope', revoked.apiKey]) {
      const response = await api.request('HEAD', `/analytics/exports/${mine.id}/`, { key });
      assert.equal(response.status, 401, key);
    }
    assert.equal((await api.request('HEAD', `/analytics/exports/${mine.id}/`, { key: user.apiKey })).status, 200);
  });

  test("GET of one export with a valid key: the export, 404 when not theirs, 400 for a bad wait, the key's use recorded", async () => {
    const other = await createCustomerWithQuery(sql);
    await sql`UPDATE api_keys SET last_used = NULL WHERE user_id = ${user.id}`;
    const response = await api.request('GET', `/analytics/exports/${mine.id}/`, { key: user.apiKey });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.body.id, mine.id);
    const [used] = await sql`SELECT last_used FROM api_keys WHERE user_id = ${user.id}`;
    assert.notEqual(used!.last_used, null, 'last use is recorded by the same statement');
    for (const path of [`/analytics/exports/${mine.id}/`, '/analytics/exports/not-a-uuid/']) {
      const errors = await refused(() => api.request('GET', path, { key: other.user.apiKey }), 404);
      assert.deepEqual(errors, { detail: 'Not found.' }, path);
    }
    const errors = await refused(() => api.request('GET', `/analytics/exports/${mine.id}/?wait=forever`, { key: user.apiKey }), 400);
    assert.deepEqual(Object.keys(errors), ['wait']);
  });

  test('Bearer and Token both work; the key is stored hashed', async () => {
    for (const scheme of ['Bearer', 'Token', 'bearer']) {
      const response = await api.request('GET', '/analytics/exports/', { headers: { authorization: `${scheme} ${user.apiKey}` } });
      assert.equal(response.status, 200, scheme);
    }
    const [stored] = await sql`SELECT count(*)::int AS n FROM api_keys WHERE key_hash = ${user.apiKey} OR prefix = ${user.apiKey}`;
    assert.equal(stored!.n, 0);
    const [used] = await sql`SELECT last_used FROM api_keys WHERE user_id = ${user.id}`;
    assert.notEqual(used!.last_used, null, 'last use is recorded');
  });
});

describe('everything else', () => {
  test('unknown routes are 404 JSON', async () => {
    for (const path of ['/nope', '/analytics', '/analytics/exports/x/y/z']) {
      const response = await api.request('GET', path, { key: user.apiKey });
      assert.equal(response.status, 404, path);
      assert.deepEqual(response.body, { detail: 'Not found.' });
    }
  });

  test('an unexpected error is a 500 JSON with a request id, and the service stays healthy', async () => {
    // The table renamed away for a moment stands in for any fault the code did not expect.
    await sql`ALTER TABLE analytics_exports RENAME TO analytics_exports_away`;
    let response: ApiResponse;
    try {
      response = await api.request('GET', '/analytics/exports/', { key: user.apiKey });
    } finally {
      await sql`ALTER TABLE analytics_exports_away RENAME TO analytics_exports`;
    }
    assert.equal(response.status, 500);
    assert.equal(response.body.detail, 'Internal server error.');
    assert.equal(response.body.request_id, response.headers.get('x-request-id'));
    assert.doesNotMatch(response.text, /analytics_exports/, 'no internals leak');
    const logged = logLines.find((l) => l.request_id === response.body.request_id && l.level === 50);
    assert.ok(logged, 'the error is logged under the request id');
    assert.equal(logged.level, 50);
    assert.match(JSON.stringify(logged.err), /analytics_exports/, 'with the cause, for the operator');
    assert.equal((await api.request('GET', '/healthz')).status, 200);
    assert.equal((await api.request('GET', '/analytics/exports/', { key: user.apiKey })).status, 200);
  });

  test('a burst of hostile requests leaves the service healthy', async () => {
    const hostile = ["'; DROP TABLE analytics_exports; --", '\u0000', '%', '../../etc/passwd', '😀'.repeat(200), '{"$ne": null}'];
    const responses = await Promise.all(
      hostile.flatMap((h) => [
        post({ name: h, query: h, tags: [h] }),
        api.request(
          'GET',
          `/analytics/exports/?name__contains=${encodeURIComponent(h)}&tags=${encodeURIComponent(h)}&status=${encodeURIComponent(h)}`,
          { key: user.apiKey },
        ),
        api.request('GET', `/analytics/exports/${encodeURIComponent(h)}/`, { key: user.apiKey }),
      ]),
    );
    for (const response of responses) {
      assert.ok(response.status < 500, `${response.status} ${response.text}`);
      assert.equal(typeof response.body, 'object');
    }
    // Each filter on its own too, so that an earlier check cannot shield a later one.
    for (const h of hostile) {
      for (const filter of ['name__contains', 'tags', 'status', 'query', 'limit']) {
        for (const path of ['/analytics/exports/', '/analytics/queries/']) {
          const response = await api.request('GET', `${path}?${filter}=${encodeURIComponent(h)}`, { key: user.apiKey });
          assert.ok(response.status === 200 || response.status === 400, `${path} ${filter}=${JSON.stringify(h)}: ${response.status}`);
        }
      }
    }
    assert.equal((await api.request('GET', '/healthz')).status, 200);
    assert.equal((await sql`SELECT to_regclass('analytics_exports') IS NOT NULL AS ok`)[0]!.ok, true);
  });
});
