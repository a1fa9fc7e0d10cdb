import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config';
import { startServiceProcess } from '../support/service-process';

describe('loadConfig', () => {
  test('no configuration at all: embedded Postgres and S3, the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.embeddedS3, true);
    assert.equal(config.port, 3000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.role, 'all');
    assert.equal(config.demo, true);
    assert.match(config.dataDir, /\.data$/);
    assert.equal(config.export.heartbeatTimeoutMs, 30_000);
    assert.equal(config.shutdownGraceMs, 25_000);
  });

  test('DATABASE_URL set: demo data only when DEMO=1', () => {
    assert.equal(loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/x' }).demo, false);
    assert.equal(loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/x', DEMO: '1' }).demo, true);
  });

  test('S3 settings switch the embedded server off', () => {
    const config = loadConfig({ S3_ENDPOINT: 'http://minio:9000', S3_BUCKET: 'exports', S3_ACCESS_KEY_ID: 'a', S3_SECRET_ACCESS_KEY: 'b' });
    assert.equal(config.embeddedS3, false);
    assert.equal(config.s3.forcePathStyle, true);
    assert.equal(loadConfig({ S3_BUCKET: 'exports' }).s3.forcePathStyle, false);
    assert.equal(loadConfig({ S3_BUCKET: 'exports', S3_FORCE_PATH_STYLE: 'true' }).s3.forcePathStyle, true);
  });

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /PORT must be a whole number from 0 to 65535/],
    [{ PORT: '70000' }, /PORT must be a whole number/],
    [{ ROLE: 'both' }, /ROLE must be one of all, api, worker/],
    [{ WORKER_CONCURRENCY: '0' }, /WORKER_CONCURRENCY must be a whole number from 1/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must be a URL starting with postgres:\/\//],
    [{ S3_ENDPOINT: 'minio:9000' }, /S3_ENDPOINT must be a URL/],
    [{ S3_BUCKET: 'Bad_Bucket' }, /S3_BUCKET must be a valid bucket name/],
    [{ S3_ENDPOINT: 'http://minio:9000' }, /S3_BUCKET must be set when S3_ENDPOINT is set/],
    [{ S3_ACCESS_KEY_ID: 'only-one' }, /S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together/],
    [{ S3_FORCE_PATH_STYLE: 'maybe' }, /S3_FORCE_PATH_STYLE must be one of/],
    [{ DEMO: 'sure' }, /DEMO must be one of/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
  ];
  for (const [env, message] of bad) {
    test(`refuses ${JSON.stringify(env)}`, () => {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  test('names every bad variable at once', () => {
    assert.throws(
      () => loadConfig({ PORT: 'x', ROLE: 'y' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems.length, 2);
        return true;
      },
    );
  });
});

describe('npm start with a bad configuration', () => {
  for (const [name, value] of [
    ['PORT', 'not-a-port'],
    ['ROLE', 'scheduler'],
    ['WORKER_CONCURRENCY', '-3'],
  ] as const) {
    test(`${name}=${value} exits non-zero naming ${name}, before starting anything`, async () => {
      const service = startServiceProcess({ [name]: value, DATA_DIR: '/nonexistent/should-not-be-created' });
      assert.equal(await service.exited, 1);
      assert.match(service.stderr(), new RegExp(`invalid configuration:\\n  - ${name}`));
      assert.doesNotMatch(service.stderr(), /\n\s+at /, 'no stack trace');
    });
  }
});
