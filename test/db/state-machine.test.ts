import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTestDatabase } from '../support/database';
import { createCustomer, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';

/**
 * The export status machine is the database's: every statement here is plain SQL, as an
 * operator in psql would write it, and the trigger and CHECKs must accept exactly the drawn
 * transitions.
 */

const STATES = ['queued', 'running', 'complete', 'failed'] as const;
type State = (typeof STATES)[number];
const LEGAL = new Set(['queued>running', 'queued>failed', 'running>complete', 'running>failed', 'running>queued']);

const { sql } = await createTestDatabase();
const partnerId = await createPartner(sql);
const customerId = await createCustomer(sql, partnerId);
const userId = (await createUser(sql, 'customer', { customerId })).id;
const queryId = await createQuery(sql, userId, {
  metrics: ['temperature'],
  start: '2026-01-01T00:00:00Z',
  end: '2026-01-02T00:00:00Z',
});

/** The SET clause that takes a row into `state` with every field that state requires. */
function setClauseFor(state: State): string {
  switch (state) {
    case 'queued':
      return `status = 'queued'`;
    case 'running':
      return `status = 'running', worker_id = 'test-worker'`;
    case 'complete':
      return `status = 'complete', number_of_rows = 10, total_bytes = 200, object_key = 'exports/x.csv'`;
    case 'failed':
      return `status = 'failed', errors = '{"code": "query_error", "message": "boom"}'`;
  }
}

/** An export brought to `state` through legal transitions only. */
async function exportIn(state: State): Promise<string> {
  const id = await insertExport(sql, userId, queryId);
  const path: Record<State, State[]> = {
    queued: [],
    running: ['running'],
    complete: ['running', 'complete'],
    failed: ['running', 'failed'],
  };
  for (const step of path[state]) await sql.unsafe(`UPDATE analytics_exports SET ${setClauseFor(step)} WHERE id = $1`, [id]);
  return id;
}

describe('status transitions in plain SQL', () => {
  for (const from of STATES) {
    for (const to of STATES) {
      if (from === to) continue;
      const legal = LEGAL.has(`${from}>${to}`);
      test(`${from} -> ${to} is ${legal ? 'allowed' : 'refused'}`, async () => {
        const id = await exportIn(from);
        const update = sql.unsafe(`UPDATE analytics_exports SET ${setClauseFor(to)} WHERE id = $1 RETURNING status`, [id]);
        if (legal) {
          const [row] = await update;
          assert.equal(row!.status, to);
        } else {
          await assert.rejects(update, (error: Error & { code?: string }) => {
            assert.equal(error.code, 'AE001');
            assert.match(error.message, new RegExp(`${from} -> ${to}`));
            return true;
          });
          const [row] = await sql`SELECT status FROM analytics_exports WHERE id = ${id}`;
          assert.equal(row!.status, from);
        }
      });
    }
  }

  test('an export can only be created queued', async () => {
    for (const state of ['running', 'complete', 'failed']) {
      await assert.rejects(
        sql`INSERT INTO analytics_exports (status, created_by, name, query_id, worker_id, heartbeat_at, started)
            VALUES (${state}, ${userId}, 'x', ${queryId}, 'w', now(), now())`,
        /must be created queued/,
      );
    }
  });

  test('the trigger keeps the bookkeeping of each transition', async () => {
    const id = await exportIn('queued');
    const [queued] = await sql`SELECT attempts, started, finished, created, modified FROM analytics_exports WHERE id = ${id}`;
    assert.equal(queued!.attempts, 0);
    assert.equal(queued!.started, null);
    assert.deepEqual(queued!.modified, queued!.created);

    await sql.unsafe(`UPDATE analytics_exports SET ${setClauseFor('running')} WHERE id = $1`, [id]);
    const [running] = await sql`SELECT attempts, started, heartbeat_at, rows_written FROM analytics_exports WHERE id = ${id}`;
    assert.equal(running!.attempts, 1);
    assert.notEqual(running!.started, null);
    assert.notEqual(running!.heartbeat_at, null);
    assert.equal(Number(running!.rows_written), 0);

    await sql`UPDATE analytics_exports SET status = 'queued' WHERE id = ${id}`;
    const [requeued] = await sql`SELECT worker_id, heartbeat_at, rows_written FROM analytics_exports WHERE id = ${id}`;
    assert.equal(requeued!.worker_id, null);
    assert.equal(requeued!.heartbeat_at, null);
    assert.equal(requeued!.rows_written, null);

    await sql.unsafe(`UPDATE analytics_exports SET ${setClauseFor('running')} WHERE id = $1`, [id]);
    await sql.unsafe(`UPDATE analytics_exports SET ${setClauseFor('complete')} WHERE id = $1`, [id]);
    const [complete] = await sql`SELECT attempts, finished, worker_id, modified, created FROM analytics_exports WHERE id = ${id}`;
    assert.equal(complete!.attempts, 2);
    assert.notEqual(complete!.finished, null);
    assert.equal(complete!.worker_id, null);
    assert.ok(new Date(complete!.modified) >= new Date(complete!.created));
  });

  test('every transition into queued adds exactly one pending job', async () => {
    const id = await exportIn('queued');
    const jobs = () => sql`SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE key = ${`analytics_export:${id}`}`;
    assert.equal((await jobs())[0]!.n, 1);
    await sql.unsafe(`UPDATE analytics_exports SET ${setClauseFor('running')} WHERE id = $1`, [id]);
    await sql`UPDATE analytics_exports SET status = 'queued', run_at = now() + interval '1 minute' WHERE id = ${id}`;
    const [job] = await sql`SELECT count(*)::int AS n, max(run_at) AS run_at FROM graphile_worker.jobs WHERE key = ${`analytics_export:${id}`}`;
    assert.equal(job!.n, 1);
    assert.ok(new Date(job!.run_at).getTime() > Date.now() + 30_000, 'the job waits for the export’s run_at');
  });
});

describe('CHECK constraints', () => {
  const refuses = async (id: string, set: string, constraint: string) => {
    await assert.rejects(sql.unsafe(`UPDATE analytics_exports SET ${set} WHERE id = $1`, [id]), (error: Error & { constraint_name?: string }) => {
      assert.equal(error.constraint_name, constraint);
      return true;
    });
  };

  test('complete needs row count, byte count and object key', async () => {
    for (const missing of ['number_of_rows', 'total_bytes', 'object_key']) {
      const id = await exportIn('running');
      const fields = { number_of_rows: '10', total_bytes: '200', object_key: `'k'` } as Record<string, string>;
      delete fields[missing];
      const set = [`status = 'complete'`, ...Object.entries(fields).map(([k, v]) => `${k} = ${v}`)].join(', ');
      await refuses(id, set, 'analytics_exports_complete_has_results');
    }
  });

  test('failed needs errors, and errors only come with failed', async () => {
    const running = await exportIn('running');
    await refuses(running, `status = 'failed'`, 'analytics_exports_failed_has_errors');
    const queued = await exportIn('queued');
    await refuses(queued, `errors = '{"code": "x", "message": "y"}'`, 'analytics_exports_failed_has_errors');
  });

  test('errors is an object with a code', async () => {
    const id = await exportIn('running');
    await refuses(id, `status = 'failed', errors = '"boom"'`, 'analytics_exports_errors_shape');
    await refuses(id, `status = 'failed', errors = '{"message": "boom"}'`, 'analytics_exports_errors_shape');
  });

  test('row and byte counts only when complete, never negative', async () => {
    const id = await exportIn('running');
    await refuses(id, `number_of_rows = 5, total_bytes = 10`, 'analytics_exports_results_only_when_complete');
    await refuses(id, `status = 'complete', number_of_rows = -1, total_bytes = 10, object_key = 'k'`, 'analytics_exports_counts_not_negative');
  });

  test('final states carry a finish time, and only they do', async () => {
    const complete = await exportIn('complete');
    await refuses(complete, `finished = NULL`, 'analytics_exports_final_has_finished');
    const queued = await exportIn('queued');
    await refuses(queued, `finished = now()`, 'analytics_exports_final_has_finished');
  });

  test('a running export is held by a worker', async () => {
    const id = await exportIn('queued');
    await refuses(id, `status = 'running'`, 'analytics_exports_running_is_held');
  });

  test('name is 1 to 100 characters, each tag 1 to 50', async () => {
    await assert.rejects(insertExport(sql, userId, queryId, { name: '' }), /analytics_exports_name_length/);
    await assert.rejects(insertExport(sql, userId, queryId, { tags: ['x'.repeat(51)] }), /analytics_exports_tags_valid/);
    await insertExport(sql, userId, queryId, { tags: ['x'.repeat(50)], name: 'n'.repeat(100) });
  });

  test('a query that exports reference cannot be deleted', async () => {
    const id = await exportIn('complete');
    const [row] = await sql`SELECT query_id FROM analytics_exports WHERE id = ${id}`;
    await assert.rejects(sql`DELETE FROM analytics_queries WHERE id = ${row!.query_id}`, /violates foreign key/);
  });
});

describe('cancel_export(id)', () => {
  test('fails a queued export at once', async () => {
    const id = await exportIn('queued');
    const [row] = await sql`SELECT cancel_export(${id}) AS status`;
    assert.equal(row!.status, 'failed');
    const [exported] = await sql`SELECT status, errors FROM analytics_exports WHERE id = ${id}`;
    assert.equal(exported!.errors.code, 'cancelled');
  });

  test('asks the worker holding a running export to stop, with a NOTIFY', async () => {
    const id = await exportIn('running');
    let heard!: Promise<string>;
    await new Promise<void>((listening) => {
      heard = new Promise<string>((resolve) => {
        void sql.listen('analytics_export_cancel', resolve, listening);
      });
    });
    const [row] = await sql`SELECT cancel_export(${id}) AS status`;
    assert.equal(row!.status, 'running');
    assert.equal(await heard, id);
    const [exported] = await sql`SELECT cancel_requested_at FROM analytics_exports WHERE id = ${id}`;
    assert.notEqual(exported!.cancel_requested_at, null);
  });

  test('leaves final exports as they are and answers NULL for unknown ones', async () => {
    const id = await exportIn('complete');
    const [row] = await sql`SELECT cancel_export(${id}) AS status`;
    assert.equal(row!.status, 'complete');
    const [none] = await sql`SELECT cancel_export(gen_random_uuid()) AS status`;
    assert.equal(none!.status, null);
  });
});
