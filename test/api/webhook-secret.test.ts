import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createTestApi } from '../support/api';
import { runCli } from '../support/cli';
import { testEnvironment } from '../support/environment';
import { createCustomerWithQuery } from '../support/fixtures';

/**
 * Webhook signing secrets: POST /analytics/webhook-secret/ and `users webhook-secret` create or
 * replace the caller's, show it once, and store it encrypted (AES-256-GCM) under a key that is
 * not in the database: WEBHOOK_SECRET_KEY, or DATA_DIR/webhook-secret.key made on first use.
 */

const dataDir = await fs.mkdtemp(path.join(testEnvironment.tmpDir, 'webhook-key-'));
// No WEBHOOK_SECRET_KEY: the key file under DATA_DIR.
const api = await createTestApi({ environment: { DATA_DIR: dataDir } });
const { sql } = api.db;
const { user } = await createCustomerWithQuery(sql);

const SECRET = /^whsec_([A-Za-z0-9+/]+=*)$/;

async function storedSecret(userId: string): Promise<string | undefined> {
  const [row] = await sql<{ encrypted_secret: string }[]>`SELECT encrypted_secret FROM webhook_secrets WHERE user_id = ${userId}`;
  return row?.encrypted_secret;
}

/** AES-256-GCM as the stored form is documented (base64 of IV 12 bytes, tag 16 bytes, ciphertext), decrypted here by hand. */
function decrypt(key: Buffer, stored: string): string {
  const bytes = Buffer.from(stored, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
  decipher.setAuthTag(bytes.subarray(12, 28));
  return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
}

describe('POST /analytics/webhook-secret/', () => {
  test('creates the caller’s secret, shows it once, and stores it only encrypted with the key file', async () => {
    const response = await api.request('POST', '/analytics/webhook-secret/', { key: user.apiKey });
    assert.equal(response.status, 201, response.text);
    assert.deepEqual(Object.keys(response.body), ['id', 'secret']);
    assert.equal(response.body.id, user.id);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const secret = response.body.secret as string;
    const random = Buffer.from(SECRET.exec(secret)![1]!, 'base64');
    assert.equal(random.length, 32, '32 random bytes');

    const stored = (await storedSecret(user.id))!;
    assert.ok(!stored.includes(secret.slice('whsec_'.length, 20)), 'the database does not hold the secret in clear');
    const keyFile = path.join(dataDir, 'webhook-secret.key');
    assert.equal((await fs.stat(keyFile)).mode & 0o777, 0o600, 'the key file is its owner’s only');
    const key = Buffer.from((await fs.readFile(keyFile, 'utf8')).trim(), 'base64');
    assert.equal(key.length, 32);
    assert.equal(decrypt(key, stored), secret);
    assert.throws(() => decrypt(randomBytes(32), stored), 'another key does not decrypt it');
  });

  test('a second call replaces the secret', async () => {
    const first = await api.request('POST', '/analytics/webhook-secret', { key: user.apiKey });
    const second = await api.request('POST', '/analytics/webhook-secret', { key: user.apiKey });
    assert.notEqual(first.body.secret, second.body.secret);
    const key = Buffer.from((await fs.readFile(path.join(dataDir, 'webhook-secret.key'), 'utf8')).trim(), 'base64');
    assert.equal(decrypt(key, (await storedSecret(user.id))!), second.body.secret);
  });

  test('needs an API key, and only POST', async () => {
    assert.equal((await api.request('POST', '/analytics/webhook-secret/')).status, 401);
    assert.equal((await api.request('GET', '/analytics/webhook-secret/', { key: user.apiKey })).status, 405);
  });
});

describe('npm run cli -- users webhook-secret --user ID', () => {
  test('creates or rotates the secret with the same key file as the service, and prints it once', async () => {
    const other = (await createCustomerWithQuery(sql)).user;
    const run = await runCli(['users', 'webhook-secret', '--user', other.id], { DATABASE_URL: api.db.url, DATA_DIR: dataDir });
    assert.equal(run.code, 0, run.stderr);
    const printed = JSON.parse(run.stdout) as { id: string; secret: string };
    assert.deepEqual(Object.keys(printed), ['id', 'secret']);
    assert.equal(printed.id, other.id);
    assert.match(printed.secret, SECRET);
    const key = Buffer.from((await fs.readFile(path.join(dataDir, 'webhook-secret.key'), 'utf8')).trim(), 'base64');
    assert.equal(decrypt(key, (await storedSecret(other.id))!), printed.secret);
  });

  test('with WEBHOOK_SECRET_KEY, that key encrypts it', async () => {
    const key = randomBytes(32);
    const run = await runCli(['users', 'webhook-secret', '--user', user.id], {
      DATABASE_URL: api.db.url,
      DATA_DIR: dataDir,
      WEBHOOK_SECRET_KEY: key.toString('base64'),
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(decrypt(key, (await storedSecret(user.id))!), (JSON.parse(run.stdout) as { secret: string }).secret);
  });

  test('an unknown user exits 3 (not found, as every command), a missing or malformed --user or key exits 2 or 1 with the reason', async () => {
    const env = { DATABASE_URL: api.db.url, DATA_DIR: dataDir };
    const unknown = await runCli(['users', 'webhook-secret', '--user', '00000000-0000-4000-8000-000000000000'], env);
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /no user with id/);
    const missing = await runCli(['users', 'webhook-secret'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--user is required/);
    const badKey = await runCli(['users', 'webhook-secret', '--user', user.id], { ...env, WEBHOOK_SECRET_KEY: 'short' });
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /WEBHOOK_SECRET_KEY must be 32 bytes/);
  });
});
