import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { createApp } from '../../src/api/app';
import { loadConfig } from '../../src/config';
import type { ServiceContext } from '../../src/context';
import { createDatabase } from '../../src/db/client';
import { migrate } from '../../src/db/migrate';
import { generateReadings } from '../../src/demo/readings';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/embedded/postgres';
import { createMetrics } from '../../src/observability/metrics';
import type { TestDatabase } from '../support/database';
import { testEnvironment } from '../support/environment';
import { createCustomer, createDevice, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';
import { createTestBucket, paceUploadParts } from '../support/s3';
import { startTestWorker } from '../support/worker';
import { waitFor } from '../support/wait';
import { waitForExport, waitForFinalExport } from '../support/export-rows';

/**
 * A Postgres restart (fast shutdown, then start) under a running worker and API, on a cluster of
 * this file's own (the harness's cluster is shared by every test file): the worker takes and
 * completes exports afterwards, and the API answers 503 with Retry-After while the database is
 * away and no error at all once it is back.
 */

const dataDir = path.join(testEnvironment.tmpDir, `restart-${randomBytes(6).toString('hex')}`, 'postgres');
let cluster: RunningPostgres = await startEmbeddedPostgres({ dataDir, unsafeFast: true });
const port = cluster.port;
after(() => cluster.stop());
await migrate(cluster.url);
const database: TestDatabase = { ...createDatabase(cluster.url, { max: 10 }), name: 'postgres', url: cluster.url };
after(() => database.close());
const { sql } = database;
const bucket = await createTestBucket();

/** Stops the cluster (fast shutdown: sessions terminated), runs `whileDown`, starts it again. */
async function restartCluster(whileDown: () => Promise<void> = async () => undefined): Promise<void> {
  await cluster.stop();
  await whileDown();
  cluster = await startEmbeddedPostgres({ dataDir, port, unsafeFast: true });
}

const customerId = await createCustomer(sql, await createPartner(sql));
const user = await createUser(sql, 'customer', { customerId });
const deviceIds = [await createDevice(sql, customerId), await createDevice(sql, customerId), await createDevice(sql, customerId)];
const start = new Date('2026-01-01T00:00:00Z');
const end = new Date('2026-01-31T00:00:00Z');
await generateReadings(sql, { deviceIds, metrics: ['active_power', 'temperature'], start, end, step: '1m' });
const bigQuery = await createQuery(sql, user.id, {
  metrics: ['active_power', 'temperature'],
  start: start.toISOString(),
  end: end.toISOString(),
});
const smallQuery = await createQuery(
  sql,
  user.id,
  { metrics: ['temperature'], start: start.toISOString(), end: '2026-01-01T06:00:00Z' },
  { customerScopes: [customerId] },
);

const worker = await startTestWorker(database, bucket, { WORKER_CONCURRENCY: '2' });
// The big export's parts are held a while each, so the restart surely lands in the middle of it
// however fast the COPY is (a fast one could finish between two heartbeats).
paceUploadParts(worker.context.s3, 400);

describe('a Postgres restart', () => {
  test('mid-export: the worker takes and completes exports afterwards, and its readiness says when it cannot', async (t) => {
    const running = await insertExport(sql, user.id, bigQuery);
    await waitForExport(sql, running, (row) => row.status === 'running' && (row.bytes_written ?? 0) > 0, 30_000);
    const health: string[] = [];
    const watch = setInterval(() => health.push(worker.health().status), 50);
    try {
      await restartCluster(() => new Promise((resolve) => setTimeout(resolve, 1000)));
      // Exports created after the restart are taken, and the interrupted one runs again.
      const later = [await insertExport(sql, user.id, smallQuery), await insertExport(sql, user.id, smallQuery)];
      for (const id of later) {
        const final = await waitForFinalExport(sql, id, 60_000);
        assert.equal(final.status, 'complete', JSON.stringify(final));
      }
      const interrupted = await waitForFinalExport(sql, running, 90_000);
      assert.equal(interrupted.status, 'complete', JSON.stringify(interrupted));
      await waitFor(() => (worker.health().status === 'ok' ? true : undefined), 10_000, 'the worker to be ready');
    } finally {
      clearInterval(watch);
    }
    t.diagnostic(`worker readiness while the database restarted: ${[...new Set(health)].join(', ')}`);
  });

  test('the API answers 503 with Retry-After while the database is away, and no error once it is back', async () => {
    const config = loadConfig({ DATABASE_URL: cluster.url, S3_ENDPOINT: bucket.config.endpoint, S3_BUCKET: bucket.config.bucket });
    const context: ServiceContext = {
      config: { ...config, s3: bucket.config },
      databaseUrl: cluster.url,
      database,
      s3: bucket.client,
      logger: pino({ level: 'silent' }),
      metrics: createMetrics(sql),
    };
    const app = createApp(context);
    const list = () => app.request('/analytics/exports', { headers: { authorization: `Bearer ${user.apiKey}` } });
    const create = () =>
      app.request('/analytics/export', {
        method: 'POST',
        headers: { authorization: `Bearer ${user.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'during the restart', query: smallQuery, customer_scopes: [customerId] }),
      });
    // Eight clients keep reading (keeping the pool's connections busy) across the restart.
    const statuses = new Map<string, number>();
    let phase: 'before' | 'down' | 'after' = 'before';
    let clientsRun = true;
    const clients = Array.from({ length: 8 }, async () => {
      while (clientsRun) {
        // Counted in the phase the request was sent in.
        const sentIn = phase;
        const response = await list();
        await response.arrayBuffer();
        const key = `${sentIn} ${response.status}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await restartCluster(async () => {
      phase = 'down';
      for (const response of [await list(), await create()]) {
        assert.equal(response.status, 503, await response.clone().text());
        assert.equal(response.headers.get('retry-after'), '2');
        const body = (await response.json()) as { detail: string };
        assert.match(body.detail, /database is unavailable/);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    });
    phase = 'after';
    // Long enough for every pooled connection to have been used again.
    await new Promise((resolve) => setTimeout(resolve, 8000));
    clientsRun = false;
    await Promise.all(clients);
    const seen = Object.fromEntries(statuses);
    for (const [key, count] of statuses) {
      const [when, status] = key.split(' ');
      // The database came back within this phase's last instants, too.
      if (when === 'down') assert.ok(status === '503' || status === '200', JSON.stringify(seen));
      if (when === 'after') assert.equal(status, '200', `${count} requests answered ${status} after the restart: ${JSON.stringify(seen)}`);
    }
    assert.ok((statuses.get('after 200') ?? 0) > 50, JSON.stringify(seen));
    assert.ok(!statuses.has('before 500') && !statuses.has('down 500'), JSON.stringify(seen));
    const created = await create();
    assert.equal(created.status, 201, await created.text());
  });
});
