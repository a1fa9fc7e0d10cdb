import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { createAdaptorServer } from '@hono/node-server';
import { createApp } from '../../src/api/app';
import { ExportWaits, WAIT_LISTENER_APPLICATION_NAME } from '../../src/exports/export-waits';
import { createTestApi } from '../support/api';
import { markComplete, markFailed, markRunning } from '../support/exports';
import { createCustomerWithQuery } from '../support/fixtures';
import { waitFor } from '../support/wait';

/**
 * GET /analytics/exports/{id}/?wait=N: answers at once for a finished export, as soon as a
 * waited-for export finishes (woken by the database's NOTIFY), or after N seconds. However many
 * requests wait, the API process holds one LISTEN connection, opened while someone waits.
 */

const api = await createTestApi();
const { sql } = api.db;
const { user, queryId } = await createCustomerWithQuery(sql);

// A real HTTP server over the same context, for requests a client can drop.
const server = createAdaptorServer({ fetch: createApp(api.context).fetch }) as Server;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
after(
  () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
);

async function exportId(): Promise<string> {
  const created = await api.request('POST', '/analytics/export', { key: user.apiKey, body: { name: 'Waited for', query: queryId } });
  assert.equal(created.status, 201, created.text);
  return created.body.id as string;
}

const get = (id: string, wait: string) => api.request('GET', `/analytics/exports/${id}/?wait=${wait}`, { key: user.apiKey });

/** Backends of this test's database holding the wait listener's connection. */
async function listenerConnections(): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${api.db.name} AND application_name = ${WAIT_LISTENER_APPLICATION_NAME}`;
  return row!.n;
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

describe('GET /analytics/exports/{id}/?wait=N', () => {
  test('a wait that is not a whole number from 1 to 60 is a 400 on wait, whatever the export', async () => {
    const id = await exportId();
    for (const wait of ['0', '61', '-1', '1.5', 'abc', '', '1e1', '007']) {
      const response = await get(id, wait);
      assert.equal(response.status, 400, `wait=${wait}: ${response.text}`);
      assert.deepEqual(Object.keys(response.body), ['wait'], response.text);
    }
    assert.equal((await get(id, '1')).status, 200);
  });

  test('a finished export answers at once, with its download link', async () => {
    const id = await exportId();
    await markComplete(sql, api.bucket, id, 'a,b\n1,2\n');
    const { value: response, ms } = await timed(() => get(id, '60'));
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'complete');
    assert.ok(response.body.url, 'the download link');
    assert.ok(ms < 5000, `answered in ${ms} ms`);
  });

  test('an export that does not finish is answered after N seconds with its current state', async () => {
    const id = await exportId();
    const { value: response, ms } = await timed(() => get(id, '2'));
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'queued');
    assert.ok(ms >= 1900, `held for ${ms} ms`);
    assert.ok(ms < 10_000, `answered in ${ms} ms`);
  });

  test('a waiting request answers as soon as the export finishes, long before N', async () => {
    const id = await exportId();
    await markRunning(sql, id);
    const waiting = timed(() => get(id, '60'));
    // Only once the request listens (its connection is there) is the export finished.
    await waitFor(async () => ((await listenerConnections()) === 1 ? true : undefined), 20_000, 'the listener');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await markComplete(sql, api.bucket, id, 'a\n1\n');
    const { value: response, ms } = await waiting;
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'complete');
    assert.ok(response.body.url, 'a complete export answered as GET answers it, with its link');
    assert.ok(ms < 30_000, `answered after ${ms} ms, not after the 60 s`);
    await waitFor(async () => ((await listenerConnections()) === 0 ? true : undefined), 20_000, 'the listener to close');
  });

  test('hundreds of waiting requests share one listening connection, and all answer when the export fails', async () => {
    const id = await exportId();
    const waiters = 300;
    const started = performance.now();
    const responses = Array.from({ length: waiters }, () =>
      fetch(`${baseUrl}/analytics/exports/${id}/?wait=60`, { headers: { authorization: `Bearer ${user.apiKey}` } }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { status: string },
      })),
    );
    await waitFor(async () => ((await listenerConnections()) >= 1 ? true : undefined), 30_000, 'the listener');
    // Give every request time to reach its wait: then count again.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await listenerConnections(), 1, 'one LISTEN connection for all the waiting requests');
    const [backends] = await sql<{ n: number; listening: number }[]>`
      SELECT count(*)::int AS n, count(*) FILTER (WHERE query ILIKE 'LISTEN%')::int AS listening
        FROM pg_stat_activity WHERE datname = ${api.db.name}`;
    assert.equal(backends!.listening, 1, 'one backend LISTENs');
    assert.ok(backends!.n <= api.context.config.databasePoolSize + 3, `${backends!.n} backends for ${waiters} waiting requests`);

    await markFailed(sql, id);
    const answered = await Promise.all(responses);
    const ms = performance.now() - started;
    assert.deepEqual(
      answered.map((r) => `${r.status} ${r.body.status}`),
      Array.from({ length: waiters }, () => '200 failed'),
    );
    assert.ok(ms < 55_000, `all answered after ${ms} ms, before the 60 s`);
    await waitFor(async () => ((await listenerConnections()) === 0 ? true : undefined), 20_000, 'the listener to close');
  });

  test('requests whose clients go away stop waiting: the listener closes with the last of them', async () => {
    const id = await exportId();
    const aborts = Array.from({ length: 5 }, () => new AbortController());
    const requests = aborts.map((abort) =>
      fetch(`${baseUrl}/analytics/exports/${id}/?wait=60`, {
        headers: { authorization: `Bearer ${user.apiKey}` },
        signal: abort.signal,
      }).catch((error: unknown) => error),
    );
    await waitFor(async () => ((await listenerConnections()) === 1 ? true : undefined), 20_000, 'the listener');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = performance.now();
    for (const abort of aborts) abort.abort();
    await Promise.all(requests);
    await waitFor(async () => ((await listenerConnections()) === 0 ? true : undefined), 20_000, 'the listener to close');
    const ms = performance.now() - started;
    assert.ok(ms < 20_000, `released after ${ms} ms, not after the 60 s wait`);
  });

  test('a listener connection that drops is replaced, and a NOTIFY missed meanwhile does not leave a request hanging', async () => {
    const id = await exportId();
    await markRunning(sql, id);
    const waiting = timed(() => get(id, '45'));
    await waitFor(async () => ((await listenerConnections()) === 1 ? true : undefined), 20_000, 'the listener');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${api.db.name} AND application_name = ${WAIT_LISTENER_APPLICATION_NAME}`;
    // Finished while nobody listens: its NOTIFY reaches no one.
    await markFailed(sql, id);
    const { value: response, ms } = await waiting;
    assert.equal(response.body.status, 'failed');
    assert.ok(ms < 30_000, `answered after ${ms} ms, not after the 45 s`);
  });

  test('when the process stops, waiting requests are answered at once with the state they have', async () => {
    const id = await exportId();
    // The earlier tests' listeners are gone (a backend outlives its client's end by a moment).
    await waitFor(async () => ((await listenerConnections()) === 0 ? true : undefined), 20_000, 'no listener');
    const exportWaits = new ExportWaits({ connectionString: api.db.url, logger: api.context.logger });
    const app = createApp({ ...api.context, exportWaits });
    const waiting = timed(async () =>
      app.request(`http://api.test/analytics/exports/${id}/?wait=60`, { headers: { authorization: `Bearer ${user.apiKey}` } }),
    );
    await waitFor(async () => ((await listenerConnections()) === 1 ? true : undefined), 20_000, 'the listener');
    await exportWaits.stop();
    const { value: response, ms } = await waiting;
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { status: string }).status, 'queued');
    assert.ok(ms < 30_000, `answered after ${ms} ms, not after the 60 s`);
    await waitFor(async () => ((await listenerConnections()) === 0 ? true : undefined), 20_000, 'the listener to close');
  });
});
