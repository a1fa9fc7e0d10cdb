import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config';

/** The webhook settings: WEBHOOK_ALLOW_PRIVATE's default follows the zero-configuration run; the key must be 32 bytes. */

const DATABASE_URL = 'postgres://u:p@db:5432/exports';

test('private notify_url addresses are allowed by default with the embedded database only; the variable decides when set', () => {
  assert.equal(loadConfig({}).webhooks.allowPrivate, true);
  assert.equal(loadConfig({ DATABASE_URL }).webhooks.allowPrivate, false);
  assert.equal(loadConfig({ DATABASE_URL, WEBHOOK_ALLOW_PRIVATE: '1' }).webhooks.allowPrivate, true);
  assert.equal(loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'false' }).webhooks.allowPrivate, false);
});

test('WEBHOOK_SECRET_KEY is 32 bytes in base64, or unset for the key file', () => {
  const key = randomBytes(32);
  assert.deepEqual(loadConfig({ WEBHOOK_SECRET_KEY: key.toString('base64') }).webhooks.secretKey, key);
  assert.equal(loadConfig({}).webhooks.secretKey, undefined);
  for (const bad of [
    randomBytes(16).toString('base64'),
    'not base64 at all, not at all, not at all!!',
    randomBytes(33).toString('base64'),
  ]) {
    assert.throws(
      () => loadConfig({ WEBHOOK_SECRET_KEY: bad }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /WEBHOOK_SECRET_KEY must be 32 bytes in base64/);
        return true;
      },
    );
  }
});

test('WEBHOOK_RETRY_DELAY_S: 10 s by default, 0 to 3600', () => {
  assert.equal(loadConfig({}).webhooks.retryDelayMs, 10_000);
  assert.equal(loadConfig({ WEBHOOK_RETRY_DELAY_S: '0' }).webhooks.retryDelayMs, 0);
  assert.throws(() => loadConfig({ WEBHOOK_RETRY_DELAY_S: '3601' }), /WEBHOOK_RETRY_DELAY_S/);
});
