import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import postgres from 'postgres';
import type { DevFile } from '../../src/dev-file';
import { testEnvironment } from '../support/environment';
import { startServiceProcess, waitForReady } from '../support/service-process';

/**
 * `npm start` on a fresh machine: embedded Postgres and S3 under DATA_DIR, migrations, demo
 * data, API and worker; SIGTERM stops everything; a restart keeps the data.
 */

const dataDir = path.join(testEnvironment.tmpDir, 'service-lifecycle');
const env = { DATA_DIR: dataDir, PORT: '0' };
const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');

async function readDevFile(): Promise<DevFile> {
  return JSON.parse(await fs.readFile(path.join(dataDir, 'dev.json'), 'utf8')) as DevFile;
}

async function withDatabase<T>(url: string, use: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await use(sql);
  } finally {
    await sql.end();
  }
}

describe('the service on an empty DATA_DIR', { concurrency: false }, () => {
  let firstKey: string | null;

  test('starts with no configuration, seeds demo data and writes dev.json', async () => {
    const started = Date.now();
    const service = startServiceProcess(env);
    await waitForReady(service, 60_000);
    const readyMs = Date.now() - started;
    assert.ok(readyMs < 60_000, `ready in ${readyMs} ms`);

    const dev = await readDevFile();
    assert.match(dev.base_url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(dev.api_key ?? '', /^aex_/);
    assert.match(service.stderr(), new RegExp(`Demo API key: ${dev.api_key}`));
    firstKey = dev.api_key;

    const health = await fetch(`${dev.base_url}/healthz`);
    assert.equal(health.status, 200);

    await withDatabase(dev.database_url, async (sql) => {
      const [counts] = await sql`
        SELECT (SELECT count(*) FROM partners)::int AS partners,
               (SELECT count(*) FROM device_readings)::int AS readings,
               (SELECT count(DISTINCT metric) FROM device_readings)::int AS metrics,
               (SELECT count(*) FROM analytics_queries)::int AS queries,
               (SELECT count(*) FROM users WHERE account_type = 'admin')::int AS admins`;
      assert.equal(counts!.partners, 1);
      assert.ok(counts!.readings >= 100_000, `${counts!.readings} readings`);
      assert.ok(counts!.metrics >= 3);
      assert.ok(counts!.queries >= 2);
      assert.equal(counts!.admins, 1);
      await sql`INSERT INTO partners (name) VALUES ('Written before the restart')`;
    });

    service.child.kill('SIGTERM');
    assert.equal(await service.exited, 0);
    assert.equal(existsSync(pidFile), false, 'the embedded Postgres stopped with the service');
  });

  test('a restart keeps everything, reuses the demo key and is ready quickly', async () => {
    const started = Date.now();
    const service = startServiceProcess(env);
    // The budget is 15 s on an idle machine (README, "Performance" has the figure); the tests run
    // beside others on two cores, so they allow twice that before calling it a failure.
    await waitForReady(service, 30_000);
    assert.ok(Date.now() - started < 30_000);

    const dev = await readDevFile();
    assert.equal(dev.api_key, firstKey);
    await withDatabase(dev.database_url, async (sql) => {
      const rows = await sql`SELECT name FROM partners ORDER BY name`;
      assert.deepEqual(
        rows.map((r) => r.name),
        ['Demo Partner', 'Written before the restart'],
      );
      const [keys] = await sql`SELECT count(*)::int AS n FROM api_keys`;
      assert.equal(keys!.n, 1, 'no new key minted while the recorded one works');
    });
    service.child.kill('SIGINT');
    assert.equal(await service.exited, 0);
  });

  test('after a SIGKILL the next start takes over the orphaned cluster', async () => {
    const first = startServiceProcess(env);
    await waitForReady(first);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = startServiceProcess(env);
    await waitForReady(second, 30_000);
    const dev = await readDevFile();
    assert.equal((await fetch(`${dev.base_url}/healthz`)).status, 200);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0);
    assert.equal(existsSync(pidFile), false);
  });

  test('a port in use gives one clear line and exit 1', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const service = startServiceProcess({ ...env, PORT: String(port) });
      assert.equal(await service.exited, 1);
      assert.match(service.stderr(), new RegExp(`cannot start: PORT ${port} is already in use on 127\\.0\\.0\\.1`));
      assert.doesNotMatch(service.stderr(), /\n\s+at /, 'no stack trace');
      assert.equal(existsSync(pidFile), false, 'what it had started is stopped again');
    } finally {
      blocker.close();
    }
  });

  test('a DATA_DIR that cannot be written gives one clear line and exit 1', async () => {
    const blockedBy = path.join(testEnvironment.tmpDir, 'a-file');
    await fs.writeFile(blockedBy, 'not a directory');
    const service = startServiceProcess({ DATA_DIR: path.join(blockedBy, 'data'), PORT: '0' });
    assert.equal(await service.exited, 1);
    assert.match(service.stderr(), /cannot start: DATA_DIR .*a-file\/data cannot be written \(ENOTDIR\)/);
  });
});
