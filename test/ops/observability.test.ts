import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { createApp } from '../../src/api/app';
import type { ServiceContext } from '../../src/context';
import { createDatabase } from '../../src/db/client';
import { generateReadings } from '../../src/demo/readings';
import { createMetrics } from '../../src/observability/metrics';
import { createS3Client } from '../../src/storage/s3-client';
import { createTestApi } from '../support/api';
import { ageHeartbeat, markFailed, markRunning } from '../support/exports';
import { createCustomer, createDevice, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';
import { startPrivateS3 } from '../support/s3';
import { spawnWorker, waitForLog, workerEnvironment } from '../support/worker';
import { waitFor } from '../support/wait';
import { waitForFinalExport } from '../support/export-rows';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import postgres from 'postgres';

/** What @hono/node-server passes a request from a client on this host. */
const loopback = { incoming: { socket: { remoteAddress: '127.0.0.1' } } };

/**
 * What an operator watches: one JSON log line per request and per export outcome, Prometheus
 * metrics from the API and from a worker process (which serves them on its own small server),
 * and /readyz naming the part that is down.
 */

const logLines: Array<Record<string, unknown>> = [];
const api = await createTestApi({ logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) }) });
const { sql } = api.db;
const customerId = await createCustomer(sql, await createPartner(sql));
const user = await createUser(sql, 'customer', { customerId });
const deviceId = await createDevice(sql, customerId);
await generateReadings(sql, {
  deviceIds: [deviceId],
  metrics: ['temperature'],
  start: new Date('2026-01-01T00:00:00Z'),
  end: new Date('2026-01-01T02:00:00Z'),
  step: '1m',
});
const queryId = await createQuery(sql, user.id, { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-01T02:00:00Z' });
const admin = await createUser(sql, 'admin');
/** /readyz's messages are for an admin's key (or the loopback): the tests of messages send one. */
const asAdmin = { headers: { authorization: `Bearer ${admin.apiKey}` } };

/** A metric's value from Prometheus text, by name and exact label set ('' for none). */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('request logs', () => {
  test('one line per request with its request id, method, path, route, status and duration; never the API key', async () => {
    logLines.length = 0;
    const response = await api.request('GET', '/analytics/exports/', { key: user.apiKey });
    assert.equal(response.status, 200);
    const id = response.headers.get('x-request-id');
    const lines = logLines.filter((l) => l.msg === 'request' && l.request_id === id);
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/analytics/exports/');
    assert.equal(line.status, 200);
    assert.equal(typeof line.duration_ms, 'number');
    assert.match(String(line.route), /^\/analytics\/exports/);

    const unauthorised = await api.request('GET', '/analytics/exports/', { key: 'aex_not-a-key' });
    assert.equal(unauthorised.status, 401);
    assert.ok(logLines.some((l) => l.msg === 'request' && l.status === 401 && l.request_id === unauthorised.headers.get('x-request-id')));
    assert.doesNotMatch(JSON.stringify(logLines), new RegExp(`${user.apiKey}|aex_not-a-key`), 'no key in any log line');
  });
});

describe('GET /metrics on the API', () => {
  test('Prometheus text: exports by status and queue depth from the database, requests by route', async () => {
    const queued = [await insertExport(sql, user.id, queryId), await insertExport(sql, user.id, queryId)];
    await markFailed(sql, await insertExport(sql, user.id, queryId));
    await sql`UPDATE analytics_exports SET run_at = now() + interval '1 hour' WHERE id = ${queued[1]!}`;
    const [counts] = await sql<{ queued: number; failed: number; due: number }[]>`
      SELECT count(*) FILTER (WHERE status = 'queued')::int AS queued, count(*) FILTER (WHERE status = 'failed')::int AS failed,
             count(*) FILTER (WHERE status = 'queued' AND run_at <= now())::int AS due
        FROM analytics_exports`;
    await api.request('GET', '/analytics/exports/', { key: user.apiKey });

    const response = await api.request('GET', '/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const text = response.text;
    assert.equal(sample(text, 'analytics_exports', 'status="queued"'), counts!.queued);
    assert.equal(sample(text, 'analytics_exports', 'status="failed"'), counts!.failed);
    assert.equal(sample(text, 'analytics_exports', 'status="running"'), 0);
    assert.equal(sample(text, 'analytics_export_queue_depth'), counts!.due, 'due exports only, not those waiting for a retry');
    assert.ok(sample(text, 'analytics_export_oldest_queued_seconds')! >= 0);
    assert.ok(
      sample(text, 'http_request_duration_seconds_count', 'method="GET",route="/analytics/exports",status="200"')! >= 1,
      text.match(/http_request_duration_seconds_count.*/g)?.join('\n'),
    );
    assert.equal(sample(text, 'analytics_export_attempts_total', 'outcome="complete"'), 0, 'reported from the start');
    for (const name of [
      'analytics_export_duration_seconds',
      'analytics_export_size_bytes',
      'analytics_export_queue_wait_seconds',
      'analytics_export_rows_total',
      'analytics_export_bytes_total',
    ]) {
      assert.match(text, new RegExp(`# TYPE ${name} `), name);
    }
  });
});

describe('worker heartbeats in /metrics', () => {
  test('the oldest running export heartbeat age and the workers holding running exports, from the database', async () => {
    const before = (await api.request('GET', '/metrics')).text;
    assert.equal(sample(before, 'analytics_export_heartbeat_age_seconds'), 0, 'none runs');
    assert.equal(sample(before, 'analytics_export_running_workers'), 0);
    const id = await insertExport(sql, user.id, queryId);
    await markRunning(sql, id);
    await ageHeartbeat(sql, id, 3);
    try {
      const text = (await api.request('GET', '/metrics')).text;
      const age = sample(text, 'analytics_export_heartbeat_age_seconds')!;
      assert.ok(age >= 180 && age < 240, `age ${age}`);
      assert.equal(sample(text, 'analytics_export_running_workers'), 1);
    } finally {
      await markFailed(sql, id);
    }
  });
});

describe('the database reads behind /metrics', () => {
  test('one query per scrape for the gauges that share one: queue depth and oldest wait, heartbeat age and workers', async () => {
    // A client of its own whose every statement is seen (postgres.js calls debug for each).
    const statements: string[] = [];
    const watched = postgres(api.context.databaseUrl, {
      max: 4,
      onnotice: () => {},
      debug: (_connection, query) => void statements.push(query),
    });
    try {
      const { registry } = createMetrics(watched);
      for (let scrape = 1; scrape <= 2; scrape++) {
        statements.length = 0;
        const text = await registry.metrics();
        for (const gauge of ['queue_depth', 'oldest_queued_seconds', 'heartbeat_age_seconds', 'running_workers']) {
          assert.notEqual(sample(text, `analytics_export_${gauge}`), undefined, gauge);
        }
        const count = (pattern: RegExp) => statements.filter((statement) => pattern.test(statement)).length;
        assert.equal(count(/status = 'queued' AND run_at <= now\(\)/), 1, `scrape ${scrape}: the due queue read once`);
        assert.equal(count(/AS held/), 1, `scrape ${scrape}: the heartbeats read once`);
      }
    } finally {
      await watched.end({ timeout: 5 });
    }
  });
});

describe('the route label of /metrics', () => {
  test('requests refused before their handler (401, 405, 413) count under their route; only unknown paths are (unmatched)', async () => {
    const before = (await api.request('GET', '/metrics')).text;
    const count = (text: string, labels: string) => sample(text, 'http_request_duration_seconds_count', labels) ?? 0;
    const id = '00000000-0000-4000-8000-000000000000';
    assert.equal((await api.request('GET', '/analytics/exports/')).status, 401);
    assert.equal((await api.request('PUT', `/analytics/exports/${id}/`, { key: user.apiKey, body: {} })).status, 405);
    const tooLarge = await api.request('POST', '/analytics/export', { key: user.apiKey, body: 'x'.repeat(1024 * 1024 + 1) });
    assert.equal(tooLarge.status, 413);
    assert.equal((await api.request('GET', '/no/such/path')).status, 404);

    const after = (await api.request('GET', '/metrics')).text;
    const expected: Array<[string, number]> = [
      ['method="GET",route="/analytics/exports",status="401"', 1],
      ['method="PUT",route="/analytics/exports/:id",status="405"', 1],
      ['method="POST",route="/analytics/export",status="413"', 1],
      ['method="GET",route="(unmatched)",status="404"', 1],
    ];
    for (const [labels, increase] of expected) assert.equal(count(after, labels) - count(before, labels), increase, labels);
    assert.doesNotMatch(after, /route="\(unmatched\)",status="(401|405|413)"/);
  });
});

describe('GET /readyz', () => {
  test('200 naming each check when the database and the bucket answer', async () => {
    const response = await api.request('GET', '/readyz');
    assert.equal(response.status, 200, response.text);
    assert.equal(response.body.status, 'ready');
    assert.equal(response.body.checks.database.status, 'ok');
    assert.equal(response.body.checks.storage.status, 'ok');
  });

  test('503 naming storage when the S3 server is down, and ready again when it is back; /healthz stays 200', async () => {
    const s3 = await startPrivateS3();
    const config = { ...api.context.config.s3, endpoint: s3.endpoint, bucket: 'ready-check' };
    const client = createS3Client(config);
    await client.send(new CreateBucketCommand({ Bucket: 'ready-check' }));
    const app = createApp({ ...api.context, s3: client, config: { ...api.context.config, s3: config } });
    try {
      assert.equal((await app.request('/readyz')).status, 200);
      await s3.stop();
      const down = await app.request('/readyz', asAdmin);
      assert.equal(down.status, 503);
      const body = (await down.json()) as { status: string; detail: string; checks: Record<string, { status: string; error?: string }> };
      assert.equal(body.status, 'unavailable');
      assert.equal(body.checks.storage!.status, 'failed');
      assert.equal(body.checks.database!.status, 'ok');
      assert.match(body.detail, /^not ready: storage: /);
      assert.doesNotMatch(body.detail, /database/);
      assert.equal((await app.request('/healthz')).status, 200);
      await s3.restart();
      assert.equal((await app.request('/readyz')).status, 200);
    } finally {
      client.destroy();
    }
  });

  test('503 naming storage when the bucket is missing', async () => {
    const config = { ...api.context.config.s3, bucket: 'no-such-bucket-here' };
    const app = createApp({ ...api.context, config: { ...api.context.config, s3: config } });
    const response = await app.request('/readyz', asAdmin);
    assert.equal(response.status, 503);
    assert.match(((await response.json()) as { detail: string }).detail, /storage: bucket not found \(404\)/);
  });

  test('503 naming the database when it refuses connections, within the timeout', async () => {
    const database = createDatabase('postgres://nobody:nothing@127.0.0.1:9/none', { max: 1 });
    const context: ServiceContext = { ...api.context, database, metrics: createMetrics(database.sql) };
    try {
      const started = Date.now();
      // The database is the part that is down: no key can be checked, the loopback still sees why.
      const response = await createApp(context).request('/readyz', {}, loopback);
      assert.ok(Date.now() - started < 5000);
      assert.equal(response.status, 503);
      const body = (await response.json()) as { detail: string; checks: Record<string, { status: string }> };
      assert.equal(body.checks.database!.status, 'failed');
      assert.equal(body.checks.storage!.status, 'ok');
      assert.match(body.detail, /^not ready: database: /);
    } finally {
      await database.close();
    }
  });

  test('a public caller learns which part failed, not its message; an admin key or the loopback get the message', async () => {
    const config = { ...api.context.config.s3, bucket: 'no-such-bucket-here' };
    const app = createApp({ ...api.context, config: { ...api.context.config, s3: config } });
    const read = async (init: RequestInit, env?: unknown) => {
      const response = await app.request('/readyz', init, env);
      assert.equal(response.status, 503);
      return (await response.json()) as { detail: string; checks: Record<string, { status: string; error?: string }> };
    };
    const elsewhere = { incoming: { socket: { remoteAddress: '203.0.113.7' } } };
    for (const [who, body] of [
      ['no key, no socket', await read({})],
      ['from another host', await read({}, elsewhere)],
      ['a customer key', await read({ headers: { authorization: `Bearer ${user.apiKey}` } }, elsewhere)],
      ['an unknown key', await read({ headers: { authorization: 'Bearer nope' } }, elsewhere)],
      ['the loopback behind a proxy', await read({ headers: { 'x-forwarded-for': '203.0.113.7' } }, loopback)],
    ] as const) {
      assert.equal(body.detail, 'not ready: storage', who);
      assert.deepEqual(Object.keys(body.checks.storage!).sort(), ['duration_ms', 'status'], who);
      assert.equal(body.checks.storage!.status, 'failed', who);
      assert.doesNotMatch(JSON.stringify(body), /no-such-bucket|404|not found/, who);
    }
    for (const [who, body] of [
      ['an admin key from another host', await read(asAdmin, elsewhere)],
      ['the loopback', await read({}, loopback)],
      ['the loopback over IPv6', await read({}, { incoming: { socket: { remoteAddress: '::1' } } })],
    ] as const) {
      assert.equal(body.detail, 'not ready: storage: bucket not found (404)', who);
      assert.equal(body.checks.storage!.error, 'bucket not found (404)', who);
    }
  });

  test('through a real server on 127.0.0.1 the caller is on the loopback and gets the message', async () => {
    const config = { ...api.context.config.s3, bucket: 'no-such-bucket-here' };
    const server = serve({
      fetch: createApp({ ...api.context, config: { ...api.context.config, s3: config } }).fetch,
      hostname: '127.0.0.1',
      port: 0,
    });
    try {
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(response.status, 503);
      assert.equal(((await response.json()) as { detail: string }).detail, 'not ready: storage: bucket not found (404)');
    } finally {
      server.close();
    }
  });
});

describe('a ROLE=worker process', () => {
  test('serves /healthz, /readyz and /metrics on PORT, logs one line per export outcome and counts it', async () => {
    // Exports left queued by the tests above are not this test's: cancel them first.
    await sql`SELECT cancel_export(id) FROM analytics_exports WHERE status = 'queued'`;
    const worker = spawnWorker(workerEnvironment(api.db, api.bucket, { LOG_LEVEL: 'info' }));
    const listening = await waitForLog(worker, (l) => l.msg === 'health and metrics server listening', 60_000);
    const base = String(listening.url);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200, await ready.clone().text());
    assert.equal((await fetch(`${base}/analytics/exports/`)).status, 404, 'no API in a worker');

    const id = await insertExport(sql, user.id, queryId);
    const final = await waitForFinalExport(sql, id);
    assert.equal(final.status, 'complete');
    assert.equal(final.number_of_rows, 120);
    const line = await waitForLog(worker, (l) => l.export_id === id && l.msg === 'export complete');
    assert.equal(line.outcome, 'complete');
    assert.equal(line.rows, 120);
    assert.equal(line.bytes, final.total_bytes);
    assert.equal(typeof line.duration_ms, 'number');
    assert.equal(typeof line.queued_ms, 'number');

    const text = await waitFor(async () => {
      const body = await (await fetch(`${base}/metrics`)).text();
      return sample(body, 'analytics_export_attempts_total', 'outcome="complete"') === 1 ? body : undefined;
    });
    assert.equal(sample(text, 'analytics_export_rows_total'), 120);
    assert.equal(sample(text, 'analytics_export_bytes_total'), final.total_bytes);
    assert.equal(sample(text, 'analytics_export_size_bytes_count'), 1);
    assert.equal(sample(text, 'analytics_export_duration_seconds_count', 'outcome="complete"'), 1);
    assert.equal(sample(text, 'analytics_export_queue_wait_seconds_count'), 1);
    assert.equal(sample(text, 'analytics_exports', 'status="complete"'), 1);

    worker.kill('SIGTERM');
    assert.deepEqual(await worker.exited, { code: 0, signal: null });
  });
});
