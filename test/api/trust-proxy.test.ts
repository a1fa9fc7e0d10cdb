import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createApp } from '../../src/api/app';
import { loadConfig } from '../../src/config';
import { createTestApi } from '../support/api';
import { createCustomer, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';

/**
 * Behind a reverse proxy (TRUST_PROXY=1), the Link headers of lists name the address the client
 * used (X-Forwarded-Proto, X-Forwarded-Host); by default those headers are ignored.
 */

const api = await createTestApi();
const { sql } = api.db;
const customerId = await createCustomer(sql, await createPartner(sql));
const user = await createUser(sql, 'customer', { customerId });
const definition = { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' };
const scopes = { customerScopes: [customerId] };
const queryId = await createQuery(sql, user.id, definition, scopes);
await createQuery(sql, user.id, definition, scopes);
await insertExport(sql, user.id, queryId, scopes);
await insertExport(sql, user.id, queryId, scopes);

const trusting = createApp({ ...api.context, config: { ...api.context.config, trustProxy: true } });
const trustingNone = createApp({ ...api.context, config: { ...api.context.config, trustProxy: false } });

/** The Link header of a list's first page of one, requested as http://api.internal:3000 with `headers`. */
async function link(app: ReturnType<typeof createApp>, path: string, headers: Record<string, string>): Promise<string | null> {
  const query = path.startsWith('/analytics/exports') ? '?limit=1&status=queued' : '?limit=1';
  const response = await app.request(`http://api.internal:3000${path}${query}`, {
    headers: { authorization: `Bearer ${user.apiKey}`, ...headers },
  });
  assert.equal(response.status, 200, await response.clone().text());
  return response.headers.get('link');
}

const PROXIED = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'exports.example.com' };

describe('TRUST_PROXY', () => {
  test('read from the environment: off unless set', () => {
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(loadConfig({ TRUST_PROXY: '1' }).trustProxy, true);
    assert.equal(loadConfig({ TRUST_PROXY: 'false' }).trustProxy, false);
  });

  test('on: the Link headers of both lists use X-Forwarded-Proto and X-Forwarded-Host, filters kept', async () => {
    assert.equal(
      await link(trusting, '/analytics/exports/', PROXIED),
      '<https://exports.example.com/analytics/exports/?limit=1&status=queued&offset=1>; rel="next"',
    );
    assert.equal(
      await link(trusting, '/analytics/queries/', PROXIED),
      '<https://exports.example.com/analytics/queries/?limit=1&offset=1>; rel="next"',
    );
    // A port the proxy forwards is kept; the first value of a proxy chain is the client's.
    assert.equal(
      await link(trusting, '/analytics/exports/', {
        'x-forwarded-proto': 'https, http',
        'x-forwarded-host': 'exports.example.com:8443, lb',
      }),
      '<https://exports.example.com:8443/analytics/exports/?limit=1&status=queued&offset=1>; rel="next"',
    );
    // Only the scheme forwarded: the Host header's host and port stay.
    assert.equal(
      await link(trusting, '/analytics/exports/', { 'x-forwarded-proto': 'https' }),
      '<https://api.internal:3000/analytics/exports/?limit=1&status=queued&offset=1>; rel="next"',
    );
  });

  test('on: a forwarded value that is not a plain scheme or host is ignored', async () => {
    for (const headers of <Array<Record<string, string>>>[
      { 'x-forwarded-proto': 'javascript', 'x-forwarded-host': 'evil.example/path' },
      { 'x-forwarded-proto': '', 'x-forwarded-host': 'user@evil.example' },
      { 'x-forwarded-host': 'evil.example:99999' },
    ]) {
      assert.equal(
        await link(trusting, '/analytics/exports/', headers),
        '<http://api.internal:3000/analytics/exports/?limit=1&status=queued&offset=1>; rel="next"',
        JSON.stringify(headers),
      );
    }
  });

  test('off (the default): the forwarded headers are ignored', async () => {
    const expected = '<http://api.internal:3000/analytics/exports/?limit=1&status=queued&offset=1>; rel="next"';
    assert.equal(await link(trustingNone, '/analytics/exports/', PROXIED), expected);
    assert.equal(api.context.config.trustProxy, false);
    assert.equal(await link(createApp(api.context), '/analytics/exports/', PROXIED), expected);
  });
});
