import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { createTestApi } from '../support/api';
import { createCustomerWithQuery } from '../support/fixtures';

/**
 * notify_url at create time: its form, and where it may lead. Without WEBHOOK_ALLOW_PRIVATE (the
 * default with DATABASE_URL set) only https to public addresses is taken; every refusal is a 400
 * on notify_url and stores nothing. IP literals and localhost only: no test depends on outside DNS.
 */

const api = await createTestApi({ environment: { WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64') } });
const { sql } = api.db;
const { user, queryId } = await createCustomerWithQuery(sql);

const create = (notifyUrl: unknown) =>
  api.request('POST', '/analytics/export', { key: user.apiKey, body: { name: 'Notify', query: queryId, notify_url: notifyUrl } });

async function exportCount(): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM analytics_exports`;
  return row!.n;
}

async function refused(notifyUrl: unknown, message: RegExp) {
  const before = await exportCount();
  const response = await create(notifyUrl);
  assert.equal(response.status, 400, `${String(notifyUrl).slice(0, 80)}: ${response.text}`);
  assert.deepEqual(Object.keys(response.body), ['notify_url'], response.text);
  assert.match(response.body.notify_url[0], message, String(notifyUrl).slice(0, 80));
  assert.equal(await exportCount(), before, 'nothing stored');
}

describe('notify_url on POST /analytics/export', () => {
  test('before the caller has a signing secret, a notify_url is refused and says how to get one', async () => {
    await refused('https://93.184.215.14/hook', /webhook-secret/);
  });

  test('with a secret, an https URL on a public address is taken and shown on the resource', async () => {
    const secret = await api.request('POST', '/analytics/webhook-secret/', { key: user.apiKey });
    assert.equal(secret.status, 201);
    for (const url of ['https://93.184.215.14/hook?a=1', 'https://[2606:4700:4700::1111]:8443/x']) {
      const response = await create(url);
      assert.equal(response.status, 201, response.text);
      assert.equal(response.body.notify_url, url);
      const got = await api.request('GET', `/analytics/exports/${response.body.id}/`, { key: user.apiKey });
      assert.equal(got.body.notify_url, url);
    }
    const plain = await api.request('POST', '/analytics/export', { key: user.apiKey, body: { name: 'Plain', query: queryId } });
    assert.equal(plain.body.notify_url, null);
  });

  test('what is not an absolute http(s) URL of at most 2,048 characters is refused by its form', async () => {
    for (const url of ['not a url', '/relative/path', 'ftp://93.184.215.14/x', 'https://user:pw@93.184.215.14/x', '', 42, null]) {
      await refused(url, /./);
    }
    await refused(`https://93.184.215.14/${'a'.repeat(2049 - 'https://93.184.215.14/'.length)}`, /2048/);
    const longest = `https://93.184.215.14/${'a'.repeat(2048 - 'https://93.184.215.14/'.length)}`;
    assert.equal((await create(longest)).status, 201, 'exactly 2,048 characters');
  });

  test('http is refused unless private addresses are allowed', async () => {
    await refused('http://93.184.215.14/hook', /https/);
  });

  test('hosts that are or resolve to loopback, private, link-local, unique-local and other special addresses are refused', async () => {
    for (const host of [
      '127.0.0.1',
      '127.1.2.3',
      'localhost',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '169.254.1.1',
      '100.64.0.1',
      '0.0.0.0',
      '0.1.2.3',
      '224.0.0.1',
      '255.255.255.255',
      '[::1]',
      '[::]',
      '[fc00::1]',
      '[fd12:3456::1]',
      '[fe80::1]',
      '[::ffff:127.0.0.1]',
      '[::ffff:10.0.0.1]',
      '[ff02::1]',
      '2130706433',
      '0x7f000001',
    ]) {
      await refused(`https://${host}/hook`, /not a public address/);
    }
  });
});

describe('with WEBHOOK_ALLOW_PRIVATE=1', () => {
  test('http and private addresses are taken', async () => {
    const open = await createTestApi({
      environment: { WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64') },
    });
    const cast = await createCustomerWithQuery(open.db.sql);
    await open.request('POST', '/analytics/webhook-secret/', { key: cast.user.apiKey });
    for (const url of ['http://127.0.0.1:8080/hook', 'https://localhost/hook', 'http://[::1]/x', 'http://10.1.2.3/']) {
      const response = await open.request('POST', '/analytics/export', {
        key: cast.user.apiKey,
        body: { name: 'Private', query: cast.queryId, notify_url: url },
      });
      assert.equal(response.status, 201, `${url}: ${response.text}`);
    }
  });
});
