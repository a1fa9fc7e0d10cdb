import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createTestDatabase } from '../support/database';
import { ROOT } from '../support/built';
import { ageHeartbeat, markComplete, markFailed, markRunning } from '../support/exports';
import { createCustomer, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';
import { createTestBucket } from '../support/s3';

// Timestamps come back as text (drizzle sets postgres.js so); `new Date` reads them.

/**
 * What an operator does in psql (docs/operations.md): the analytics_export_jobs view answers
 * what is stuck, what failed and why, what runs where; retry_export makes a new export of a
 * failed one and refuses everything else with a SQLSTATE. Plain SQL only, as in psql.
 */

const { sql } = await createTestDatabase();
const bucket = await createTestBucket();
const partnerId = await createPartner(sql);
const customerId = await createCustomer(sql, partnerId);
const user = await createUser(sql, 'customer', { customerId });
const queryId = await createQuery(sql, user.id, { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' });

interface JobRow {
  id: string;
  status: string;
  attempts: number;
  max_attempts: number;
  last_error: { code: string; message: string } | null;
  error_code: string | null;
  worker_id: string | null;
  held_since: string | null;
  heartbeat_age_s: number | null;
  rows_written: string | null;
  bytes_written: string | null;
  run_at: string | null;
  started: string | null;
  finished: string | null;
  query_id: string;
  created_by: string;
  name: string;
  retry_of: string | null;
}

async function job(id: string): Promise<JobRow> {
  const [row] = await sql<JobRow[]>`
    SELECT *, extract(epoch FROM heartbeat_age)::float8 AS heartbeat_age_s FROM analytics_export_jobs WHERE id = ${id}`;
  return row!;
}

async function retry(id: string): Promise<string> {
  const [row] = await sql<{ id: string }[]>`SELECT retry_export(${id}) AS id`;
  return row!.id;
}

async function sqlState(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { code: string; message: string };
    return { code: e.code, message: e.message };
  }
  assert.fail('expected the statement to fail');
}

describe('analytics_export_jobs', () => {
  test('shows each state with the fields that state means, and nothing else', async () => {
    const queued = await insertExport(sql, user.id, queryId, { name: 'queued one' });
    const running = await insertExport(sql, user.id, queryId);
    await markRunning(sql, running, { rows: 120, bytes: 4096 });
    await ageHeartbeat(sql, running, 10);
    const complete = await insertExport(sql, user.id, queryId);
    await markComplete(sql, bucket, complete, 'a,b\n1,2\n');
    const failed = await insertExport(sql, user.id, queryId);
    await markFailed(sql, failed, { code: 'query_error', message: 'division by zero' });

    const q = await job(queued);
    assert.equal(q.status, 'queued');
    assert.equal(q.name, 'queued one');
    assert.equal(q.query_id, queryId);
    assert.equal(q.created_by, user.id);
    assert.ok(Math.abs(new Date(q.run_at!).getTime() - Date.now()) < 60_000, 'queued: when the next try is due');
    assert.equal(q.worker_id, null);
    assert.equal(q.held_since, null);
    assert.equal(q.heartbeat_age_s, null);

    const r = await job(running);
    assert.equal(r.status, 'running');
    assert.equal(r.worker_id, 'test-worker');
    assert.ok(r.held_since !== null && !Number.isNaN(new Date(r.held_since).getTime()));
    assert.ok(r.heartbeat_age_s! >= 599 && r.heartbeat_age_s! < 700, `heartbeat age ${r.heartbeat_age_s}`);
    assert.equal(Number(r.rows_written), 120);
    assert.equal(Number(r.bytes_written), 4096);
    assert.equal(r.run_at, null, 'not waiting for a try');
    assert.equal(r.attempts, 1);

    const c = await job(complete);
    assert.equal(c.status, 'complete');
    assert.ok(c.finished !== null);
    assert.equal(c.last_error, null);

    const f = await job(failed);
    assert.equal(f.status, 'failed');
    assert.deepEqual(f.last_error, { code: 'query_error', message: 'division by zero' });
    assert.equal(f.error_code, 'query_error');
  });

  test('a queued export waiting after a transient fault shows that fault and its next try', async () => {
    const id = await insertExport(sql, user.id, queryId);
    await markRunning(sql, id);
    await sql`
      UPDATE analytics_exports
         SET status = 'queued', run_at = now() + interval '5 minutes',
             last_error = '{"code": "storage_error", "message": "connect ECONNREFUSED"}'
       WHERE id = ${id}`;
    const row = await job(id);
    assert.equal(row.status, 'queued');
    assert.equal(row.error_code, 'storage_error');
    assert.ok(new Date(row.run_at!).getTime() > Date.now() + 4 * 60_000);
    assert.equal(row.attempts, 1);
  });

  test('"what is stuck": running exports with an old heartbeat, as docs/operations.md asks it', async () => {
    const stuck = await insertExport(sql, user.id, queryId);
    await markRunning(sql, stuck);
    await ageHeartbeat(sql, stuck, 3);
    const alive = await insertExport(sql, user.id, queryId);
    await markRunning(sql, alive);
    const rows = await sql<{ id: string }[]>`
      SELECT id FROM analytics_export_jobs WHERE status = 'running' AND heartbeat_age > interval '1 minute'`;
    const ids = rows.map((row) => row.id);
    assert.ok(ids.includes(stuck));
    assert.ok(!ids.includes(alive));
  });
});

describe('retry_export', () => {
  test("makes a new queued export with the failed one's definition and a job; the failed one stays failed", async () => {
    const failed = await insertExport(sql, user.id, queryId, {
      name: 'nightly',
      tags: ['a', 'b'],
      customerScopes: [customerId],
      partnerScopes: [partnerId],
    });
    await markFailed(sql, failed, { code: 'storage_error', message: 'bucket gone' });
    const retried = await retry(failed);
    assert.notEqual(retried, failed);

    const [original, copy] = await sql<
      {
        id: string;
        status: string;
        name: string;
        query_id: string;
        created_by: string;
        tags: string[];
        customer_scopes: string[];
        partner_scopes: string[];
        attempts: number;
        errors: unknown;
        retry_of: string | null;
      }[]
    >`SELECT id, status, name, query_id, created_by, tags, customer_scopes, partner_scopes, attempts, errors, retry_of
        FROM analytics_exports WHERE id IN (${failed}, ${retried}) ORDER BY id = ${failed} DESC`;
    assert.equal(original!.status, 'failed', 'final states stay final');
    assert.equal(copy!.status, 'queued');
    assert.equal(copy!.attempts, 0);
    assert.equal(copy!.errors, null);
    assert.equal(copy!.retry_of, failed);
    for (const field of ['name', 'query_id', 'created_by', 'tags', 'customer_scopes', 'partner_scopes'] as const) {
      assert.deepEqual(copy![field], original![field], field);
    }
    const jobs = await sql`SELECT 1 FROM graphile_worker.jobs WHERE key = ${`analytics_export:${retried}`}`;
    assert.equal(jobs.length, 1, 'the enqueue trigger added its job');
  });

  test('refuses an export that is not failed (AE002), one already retried (AE003) and an unknown id (P0002)', async () => {
    const queued = await insertExport(sql, user.id, queryId);
    const running = await insertExport(sql, user.id, queryId);
    await markRunning(sql, running);
    const complete = await insertExport(sql, user.id, queryId);
    await markComplete(sql, bucket, complete, 'a\n1\n');
    for (const [id, status] of [
      [queued, 'queued'],
      [running, 'running'],
      [complete, 'complete'],
    ] as const) {
      const error = await sqlState(sql`SELECT retry_export(${id})`);
      assert.equal(error.code, 'AE002');
      assert.match(error.message, new RegExp(`is ${status}`));
    }

    const failed = await insertExport(sql, user.id, queryId);
    await markFailed(sql, failed);
    const first = await retry(failed);
    const again = await sqlState(sql`SELECT retry_export(${failed})`);
    assert.equal(again.code, 'AE003');
    assert.match(again.message, new RegExp(first));

    const unknown = await sqlState(sql`SELECT retry_export('00000000-0000-0000-0000-000000000000')`);
    assert.equal(unknown.code, 'P0002');
    const [count] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM analytics_exports WHERE retry_of = ${failed}`;
    assert.equal(count!.n, 1, 'refusals created nothing');
  });

  test('two concurrent retries of one export create exactly one new export', async () => {
    const failed = await insertExport(sql, user.id, queryId);
    await markFailed(sql, failed);
    const results = await Promise.allSettled([sql`SELECT retry_export(${failed})`, sql`SELECT retry_export(${failed})`]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((rejected.reason as { code: string }).code, 'AE003');
  });

  test('deleting the failed export keeps its retry (lineage set to null)', async () => {
    const failed = await insertExport(sql, user.id, queryId);
    await markFailed(sql, failed);
    const retried = await retry(failed);
    await sql`DELETE FROM analytics_exports WHERE id = ${failed}`;
    const row = await job(retried);
    assert.equal(row.status, 'queued');
    assert.equal(row.retry_of, null);
  });
});

describe('docs/operations.md', () => {
  const docs = readFileSync(path.join(ROOT, 'docs/operations.md'), 'utf8');
  const blocks = [...docs.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]!);

  test('every SQL example runs as written (a real id stands in for the elided ones)', async () => {
    assert.ok(blocks.length >= 7, `${blocks.length} examples`);
    const failed = await insertExport(sql, user.id, queryId);
    await markFailed(sql, failed, { code: 'storage_error', message: 'bucket gone' });
    for (const block of blocks) {
      const statement = block.replace(/'[0-9a-f]{4}…'/g, `'${failed}'`);
      // Run in a transaction that is then rolled back, so that one example's action is not the next one's data.
      const rollback = new Error('rollback');
      await sql
        .begin(async (tx) => {
          await tx.unsafe(statement);
          throw rollback;
        })
        .catch((error: unknown) => {
          if (error !== rollback) throw new Error(`${(error as Error).message} in:\n${statement}`);
        });
    }
  });
});
