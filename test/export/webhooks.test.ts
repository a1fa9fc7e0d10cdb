import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { startTestWorker } from '../support/worker';
import { createTestApi, type TestApi } from '../support/api';
import { runCli } from '../support/cli';
import { createQuery, READINGS_START, seedCustomerReadings } from '../support/fixtures';
import { insertExport as insertExportRow } from '../../src/db/statements/exports';
import { waitFor } from '../support/wait';
import { startWebhookReceiver, type ReceivedWebhook } from '../support/webhook-receiver';
import { WEBHOOK_MAX_ATTEMPTS } from '../../src/worker/webhook-delivery';

/**
 * Webhooks end to end: real exports run by a worker, their notifications POSTed to a local
 * receiver and checked there as a client would, with the Standard Webhooks library.
 */

const SECRET_KEY = randomBytes(32).toString('base64');
const environment = { WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_SECRET_KEY: SECRET_KEY };

const api = await createTestApi({ environment });
const { sql } = api.db;
const worker = await startTestWorker(api.db, api.bucket, { ...environment, WEBHOOK_RETRY_DELAY_S: '0' });
const { user, queryId, rows } = await visibleReadings(api);
const receiver = await startWebhookReceiver();

/** seedCustomerReadings, with the query shared with the user's customer so that the API lets them export it. */
async function visibleReadings(on: TestApi) {
  const seeded = await seedCustomerReadings(on.db.sql, 1, 1);
  const end = new Date(READINGS_START.getTime() + 86_400_000).toISOString();
  const queryId = await createQuery(
    on.db.sql,
    seeded.user.id,
    { metrics: ['active_power', 'temperature'], start: READINGS_START.toISOString(), end },
    { customerScopes: [seeded.customerId] },
  );
  return { ...seeded, queryId };
}

interface Delivery {
  webhook_id: string;
  export_id: string;
  event_type: string;
  url: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: string | null;
  gave_up_at: string | null;
  state: string;
}

async function deliveryOf(on: TestApi, exportId: string): Promise<Delivery | undefined> {
  const [row] = await on.db.sql<Delivery[]>`SELECT * FROM analytics_export_webhook_deliveries WHERE export_id = ${exportId}`;
  return row;
}

async function newSecret(on: TestApi, key: string): Promise<string> {
  const response = await on.request('POST', '/analytics/webhook-secret/', { key });
  assert.equal(response.status, 201, response.text);
  return response.body.secret as string;
}

async function createExport(on: TestApi, key: string, query: string, notifyUrl?: string): Promise<string> {
  const response = await on.request('POST', '/analytics/export', {
    key,
    body: { name: 'Notified', query, ...(notifyUrl ? { notify_url: notifyUrl } : {}) },
  });
  assert.equal(response.status, 201, response.text);
  return response.body.id as string;
}

const requestsFor = (webhookId: string) => receiver.received.filter((r) => r.headers['webhook-id'] === webhookId);

/** What a receiver does: verify the signature and timestamp with the library, then read the body. */
function verified(secret: string, request: ReceivedWebhook): { type: string; timestamp: string; data: Record<string, unknown> } {
  return new Webhook(secret).verify(request.body, request.headers) as { type: string; timestamp: string; data: Record<string, unknown> };
}

describe('webhooks when an export finishes', () => {
  test('a complete export is POSTed to notify_url, signed so that the standardwebhooks library verifies it', async () => {
    const secret = await newSecret(api, user.apiKey);
    const id = await createExport(api, user.apiKey, queryId, `${receiver.url}/hooks/complete?x=1`);
    const delivery = await waitFor(async () => {
      const row = await deliveryOf(api, id);
      return row?.state === 'delivered' ? row : undefined;
    }, 60_000);
    const [request, ...more] = requestsFor(delivery.webhook_id);
    assert.ok(request, 'the receiver got the notification');
    assert.equal(more.length, 0, 'once');
    assert.equal(request.path, '/hooks/complete?x=1');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.match(request.headers['webhook-signature']!, /^v1,[A-Za-z0-9+/]+=*$/);
    assert.ok(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000) < 600);

    const event = verified(secret, request);
    assert.equal(event.type, 'analytics_export.completed');
    const resource = (await api.request('GET', `/analytics/exports/${id}/`, { key: user.apiKey })).body;
    const { url: _url, url_expires: _expires, files: _files, ...withoutUrl } = resource;
    assert.deepEqual(event.data, withoutUrl, 'data is the export resource without url and files (links are signed on GET)');
    assert.equal(event.data.number_of_rows, rows);
    assert.equal(event.timestamp, resource.finished);
    assert.throws(
      () => verified(`whsec_${randomBytes(32).toString('base64')}`, request),
      /signature/i,
      'another secret does not verify it',
    );
    assert.throws(
      () => verified(secret, { ...request, body: request.body.replace('completed', 'complete') }),
      'a changed body does not verify',
    );

    assert.equal(delivery.attempts, 1);
    assert.equal(delivery.last_status_code, 200);
    assert.equal(delivery.event_type, 'analytics_export.completed');
    assert.equal(delivery.url, `${receiver.url}/hooks/complete?x=1`);
  });

  test('a failed export is notified as analytics_export.failed', async () => {
    const secret = await newSecret(api, user.apiKey);
    const id = await createExport(api, user.apiKey, queryId, `${receiver.url}/hooks/failed`);
    const cancelled = await api.request('POST', `/analytics/exports/${id}/cancel/`, { key: user.apiKey });
    assert.ok([200, 202, 409].includes(cancelled.status), cancelled.text);
    const delivery = await waitFor(async () => {
      const row = await deliveryOf(api, id);
      return row?.state === 'delivered' ? row : undefined;
    }, 60_000);
    const event = verified(secret, requestsFor(delivery.webhook_id)[0]!);
    const final = (await api.request('GET', `/analytics/exports/${id}/`, { key: user.apiKey })).body;
    assert.equal(event.type, final.status === 'failed' ? 'analytics_export.failed' : 'analytics_export.completed');
    if (final.status === 'failed') assert.deepEqual(event.data.errors, final.errors);
    assert.equal(event.data.status, final.status);
  });

  test('non-2xx answers and redirects are retried with the same webhook-id until a 2xx; a redirect is not followed', async () => {
    const secret = await newSecret(api, user.apiKey);
    receiver.answer(500, 302, 404);
    const id = await createExport(api, user.apiKey, queryId, `${receiver.url}/hooks/retried`);
    const delivery = await waitFor(async () => {
      const row = await deliveryOf(api, id);
      return row?.state === 'delivered' ? row : undefined;
    }, 60_000);
    const requests = requestsFor(delivery.webhook_id);
    assert.equal(requests.length, 4);
    assert.deepEqual(
      requests.map((r) => r.path),
      Array(4).fill('/hooks/retried'),
      'the redirect to /redirected was not followed',
    );
    for (const request of requests) assert.equal(verified(secret, request).type, 'analytics_export.completed');
    assert.equal(new Set(requests.map((r) => r.body)).size, 1, 'every attempt carries the same event');
    assert.equal(delivery.attempts, 4);
    assert.equal(delivery.last_status_code, 200);
    assert.equal(delivery.last_error, null);

    const metrics = await worker.context.metrics.registry.getSingleMetricAsString('analytics_export_webhook_attempts_total');
    const count = (outcome: string) => Number(new RegExp(`outcome="${outcome}"} (\\d+)`).exec(metrics)?.[1]);
    assert.ok(count('failed') >= 3, metrics);
    assert.ok(count('delivered') >= 1, metrics);
  });

  test('a receiver that does not answer within 10 s is given up on for that attempt and tried again', async () => {
    const secret = await newSecret(api, user.apiKey);
    receiver.answer(0);
    const id = await createExport(api, user.apiKey, queryId, `${receiver.url}/hooks/slow`);
    const delivery = await waitFor(async () => {
      const row = await deliveryOf(api, id);
      return row?.state === 'delivered' ? row : undefined;
    }, 60_000);
    assert.equal(delivery.attempts, 2);
    const [first, second] = requestsFor(delivery.webhook_id);
    assert.ok(first && second);
    const gap = second.at - first.at;
    // The first attempt waited its 10 s, then gave up on the answer (the retry delay is 0 here).
    assert.ok(gap >= 9_500 && gap < 40_000, `${gap} ms between the attempts`);
    assert.equal(verified(secret, requestsFor(delivery.webhook_id)[1]!).type, 'analytics_export.completed');
  });

  test('after the last attempt fails the notification is given up', async () => {
    await newSecret(api, user.apiKey);
    receiver.answer(...Array(WEBHOOK_MAX_ATTEMPTS).fill(503));
    const id = await createExport(api, user.apiKey, queryId, `${receiver.url}/hooks/down`);
    const delivery = await waitFor(
      async () => {
        const row = await deliveryOf(api, id);
        return row?.state === 'gave_up' ? row : undefined;
      },
      120_000,
      'the notification to be given up',
    );
    assert.equal(delivery.attempts, WEBHOOK_MAX_ATTEMPTS);
    assert.equal(delivery.last_status_code, 503);
    assert.equal(delivery.delivered_at, null);
    assert.equal(requestsFor(delivery.webhook_id).length, WEBHOOK_MAX_ATTEMPTS);
    const metrics = await worker.context.metrics.registry.getSingleMetricAsString('analytics_export_webhook_attempts_total');
    assert.match(metrics, /outcome="gave_up"} [1-9]/);
  });

  test('a secret rotated with the CLI signs the next deliveries; the old one no longer verifies them', async () => {
    const old = await newSecret(api, user.apiKey);
    const cli = await runCli(['users', 'webhook-secret', '--user', user.id], { DATABASE_URL: api.db.url, WEBHOOK_SECRET_KEY: SECRET_KEY });
    assert.equal(cli.code, 0, cli.stderr);
    const printed = JSON.parse(cli.stdout) as { id: string; secret: string };
    assert.equal(printed.id, user.id);
    assert.notEqual(printed.secret, old);
    const id = await createExport(api, user.apiKey, queryId, `${receiver.url}/hooks/rotated`);
    const delivery = await waitFor(async () => {
      const row = await deliveryOf(api, id);
      return row?.state === 'delivered' ? row : undefined;
    }, 60_000);
    const request = requestsFor(delivery.webhook_id)[0]!;
    assert.equal(verified(printed.secret, request).type, 'analytics_export.completed');
    assert.throws(() => verified(old, request), /signature/i);
  });

  test('an export without notify_url adds no notification', async () => {
    const id = await createExport(api, user.apiKey, queryId);
    await waitFor(async () => {
      const [row] = await sql<{ status: string }[]>`SELECT status FROM analytics_exports WHERE id = ${id}`;
      return row!.status === 'complete' ? true : undefined;
    }, 60_000);
    assert.equal(await deliveryOf(api, id), undefined);
  });
});

describe('the address is checked again when the notification is sent', () => {
  test('a notify_url accepted then (private addresses allowed) is refused by a worker that does not allow them, and nothing is sent', async () => {
    const other = await createTestApi({ environment });
    const seeded = await visibleReadings(other);
    const strict = await startTestWorker(other.db, other.bucket, {
      WEBHOOK_ALLOW_PRIVATE: '0',
      WEBHOOK_SECRET_KEY: SECRET_KEY,
      WEBHOOK_RETRY_DELAY_S: '3600',
    });
    await newSecret(other, seeded.user.apiKey);
    const id = await createExport(other, seeded.user.apiKey, seeded.queryId, `${receiver.url}/hooks/private`);
    const delivery = await waitFor(async () => {
      const row = await deliveryOf(other, id);
      return row && row.attempts >= 1 && row.last_error ? row : undefined;
    }, 60_000);
    assert.equal(delivery.state, 'pending', 'tried again later (DNS may change), not delivered');
    // http to 127.0.0.1: both the scheme and the address are refused without WEBHOOK_ALLOW_PRIVATE.
    assert.match(delivery.last_error!, /Must be an https URL|127\.0\.0\.1.*not a public address/);
    assert.equal(delivery.last_status_code, null);
    assert.equal(receiver.received.filter((r) => r.path === '/hooks/private').length, 0, 'no request reached the private address');

    // An https URL on a loopback address, stored as if it had been accepted: the address is what is refused.
    const { id: byAddress } = await insertExportRow(other.db.sql, {
      createdBy: seeded.user.id,
      name: 'Loopback',
      notes: '',
      queryId: seeded.queryId,
      tags: [],
      customerScopes: [seeded.customerId],
      partnerScopes: [],
      maxAttempts: 1,
      notifyUrl: 'https://127.0.0.1:9/hook',
    });
    const refused = await waitFor(async () => {
      const row = await deliveryOf(other, byAddress);
      return row?.last_error ? row : undefined;
    }, 60_000);
    assert.match(refused.last_error!, /127\.0\.0\.1, which is not a public address/);
    await strict.stop();
  });
});
