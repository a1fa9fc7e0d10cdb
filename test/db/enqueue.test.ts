import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createExport } from '../../src/exports/create-export';
import { createTestDatabase } from '../support/database';
import { createCustomer, createPartner, createQuery, createUser } from '../support/fixtures';

/** The queue follows the table: the enqueue trigger adds an export's job in the export's own transaction. */

const database = await createTestDatabase();
const { sql } = database;
const user = await createUser(sql, 'customer', { customerId: await createCustomer(sql, await createPartner(sql)) });

describe('creating an export', () => {
  test('the export and its job commit or roll back together', async () => {
    const queryId = await createQuery(sql, user.id, { metrics: ['energy'], start: '2026-03-07T00:00:00Z', end: '2026-03-08T00:00:00Z' });
    const input = {
      createdBy: user.id,
      name: 'together',
      notes: '',
      queryId,
      tags: [],
      customerScopes: [],
      partnerScopes: [],
      maxAttempts: 3,
    };
    const jobs = async (id: string) =>
      (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE key = ${`analytics_export:${id}`}`)[0]!.n;

    let rolledBack = '';
    await assert.rejects(
      sql.begin(async (tx) => {
        rolledBack = (await createExport(tx, input)).id;
        assert.equal(await jobs(rolledBack), 0, 'not visible outside the transaction');
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${rolledBack}`).length, 0);
    assert.equal(await jobs(rolledBack), 0);

    const committed = await sql.begin((tx) => createExport(tx, input));
    assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${committed.id}`).length, 1);
    assert.equal(await jobs(committed.id), 1);
    // The public jobs view has no payload column; the private table has it.
    const [job] = await sql`
      SELECT j.payload::text AS payload, t.identifier FROM graphile_worker._private_jobs AS j
        JOIN graphile_worker._private_tasks AS t ON t.id = j.task_id
       WHERE j.key = ${`analytics_export:${committed.id}`}`;
    assert.deepEqual(JSON.parse(job!.payload), { export_id: committed.id });
    assert.equal(job!.identifier, 'analytics_export');
  });
});
