import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startWorker } from '../../src/service';
import { createTestApi } from '../support/api';
import { createCustomer, createPartner, createQuery, createUser } from '../support/fixtures';

/**
 * POST answers with the export as it was created (the spec's "queued" body), even when an idle
 * worker claims it the instant it commits: the API reads it back inside the creating transaction.
 */

const api = await createTestApi();
const { sql } = api.db;
const worker = await startWorker(api.context);
after(() => worker.stop());

test('201 says queued, even with a worker waiting for the job', async () => {
  const customerId = await createCustomer(sql, await createPartner(sql));
  const user = await createUser(sql, 'customer', { customerId });
  const query = await createQuery(
    sql,
    user.id,
    { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z' },
    { customerScopes: [customerId] },
  );

  // Many at once, so that re-reads after commit queue behind the worker's claims for connections.
  const responses = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      api.request('POST', '/analytics/export', { key: user.apiKey, body: { name: `race ${i}`, query } }),
    ),
  );
  const ids: string[] = [];
  for (const response of responses) {
    assert.equal(response.status, 201);
    assert.equal(response.body.status, 'queued');
    assert.equal(response.body.modified, response.body.created);
    assert.equal(response.body.number_of_rows, null);
    ids.push(response.body.id);
  }
  // And the worker did run them, so the race was real.
  for (const id of ids) {
    for (let i = 0; i < 100; i++) {
      const [row] = await sql`SELECT status FROM analytics_exports WHERE id = ${id}`;
      if (row!.status === 'complete') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const [done] = await sql`SELECT count(*)::int AS n FROM analytics_exports WHERE id = ANY(${ids}::uuid[]) AND status = 'complete'`;
  assert.equal(done!.n, ids.length);
});
