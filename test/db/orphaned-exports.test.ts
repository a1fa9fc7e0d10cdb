import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestDatabase } from '../support/database';
import { createCustomer, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';

/**
 * A queued export always has a job able to run it: requeue_orphaned_exports() gives a new job to
 * queued exports, due for a while, whose job graphile-worker gave up on or whose job a dead worker
 * still holds. In plain SQL, as the rescuer and an operator call it.
 */

const { sql } = await createTestDatabase();
const customerId = await createCustomer(sql, await createPartner(sql));
const userId = (await createUser(sql, 'customer', { customerId })).id;
const queryId = await createQuery(sql, userId, { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' });

async function dueExport(): Promise<string> {
  const id = await insertExport(sql, userId, queryId);
  await sql`UPDATE analytics_exports SET run_at = now() - interval '1 minute' WHERE id = ${id}`;
  return id;
}
const key = (id: string) => `analytics_export:${id}`;
const requeue = async () => (await sql`SELECT requeue_orphaned_exports(interval '10 seconds') AS id`).map((r) => r.id as string);

test('a job graphile-worker gave up on is added again, once', async () => {
  const id = await dueExport();
  await sql`UPDATE graphile_worker._private_jobs SET attempts = max_attempts, last_error = 'boom' WHERE key = ${key(id)}`;
  assert.deepEqual(await requeue(), [id]);
  const [job] = await sql`SELECT attempts, max_attempts, locked_at FROM graphile_worker.jobs WHERE key = ${key(id)}`;
  assert.equal(job!.attempts, 0);
  assert.equal(job!.locked_at, null);
  assert.deepEqual(await requeue(), [], 'now it has a live job');
});

test('a job held by a dead worker since before the limit is replaced by a new one', async () => {
  const id = await dueExport();
  await sql`UPDATE graphile_worker._private_jobs SET locked_at = now() - interval '1 minute', locked_by = 'dead-worker' WHERE key = ${key(id)}`;
  assert.deepEqual(await requeue(), [id]);
  const [fresh] =
    await sql`SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE key = ${key(id)} AND locked_at IS NULL AND attempts = 0`;
  assert.equal(fresh!.n, 1);
});

test('leaves alone exports with a live job, not yet due, or not queued', async () => {
  const live = await dueExport();
  const notDue = await insertExport(sql, userId, queryId);
  await sql`UPDATE graphile_worker._private_jobs SET attempts = max_attempts WHERE key = ${key(notDue)}`;
  const failed = await dueExport();
  await sql`SELECT cancel_export(${failed})`;
  await sql`UPDATE graphile_worker._private_jobs SET attempts = max_attempts WHERE key = ${key(failed)}`;
  const requeued = await requeue();
  for (const id of [live, notDue, failed]) assert.ok(!requeued.includes(id), id);
});
