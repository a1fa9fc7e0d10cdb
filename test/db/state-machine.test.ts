import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTestDatabase } from '../support/database';
import { ageHeartbeat } from '../support/exports';
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

/** A key under the export's own prefix, as SQL (the row's id is in scope in a SET clause). */
const OWN_KEY = `'anx_export_' || id || '/1-00000000/x.csv'`;

/** The SET clause that takes a row into `state` with every field that state requires. */
function setClauseFor(state: State): string {
  switch (state) {
    case 'queued':
      return `status = 'queued'`;
    case 'running':
      return `status = 'running', worker_id = 'test-worker'`;
    case 'complete':
      return `status = 'complete', number_of_rows = 10, total_bytes = 200, object_key = ${OWN_KEY}`;
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
    const [job] =
      await sql`SELECT count(*)::int AS n, max(run_at) AS run_at FROM graphile_worker.jobs WHERE key = ${`analytics_export:${id}`}`;
    assert.equal(job!.n, 1);
    assert.ok(new Date(job!.run_at).getTime() > Date.now() + 30_000, 'the job waits for the export’s run_at');
  });
});

/** The statement is refused by the status trigger (SQLSTATE AE001) with a message matching `message`. */
async function refusedByTrigger(statement: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(statement, (error: Error & { code?: string }) => {
    assert.equal(error.code, 'AE001', error.message);
    assert.match(error.message, message);
    return true;
  });
}

describe('CHECK constraints', () => {
  const refuses = async (id: string, set: string, constraint: string) => {
    await assert.rejects(
      sql.unsafe(`UPDATE analytics_exports SET ${set} WHERE id = $1`, [id]),
      (error: Error & { constraint_name?: string }) => {
        assert.equal(error.constraint_name, constraint);
        return true;
      },
    );
  };

  test('complete needs row count, byte count and object key', async () => {
    for (const missing of ['number_of_rows', 'total_bytes', 'object_key']) {
      const id = await exportIn('running');
      const fields = { number_of_rows: '10', total_bytes: '200', object_key: OWN_KEY } as Record<string, string>;
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
    await refuses(
      id,
      `status = 'complete', number_of_rows = -1, total_bytes = 10, object_key = ${OWN_KEY}`,
      'analytics_exports_counts_not_negative',
    );
  });

  test('final states carry a finish time, and only they do: the trigger sets it, no writer does', async () => {
    const complete = await exportIn('complete');
    await refusedByTrigger(sql.unsafe(`UPDATE analytics_exports SET finished = NULL WHERE id = $1`, [complete]), /finished/);
    const queued = await exportIn('queued');
    await refusedByTrigger(sql.unsafe(`UPDATE analytics_exports SET finished = now() WHERE id = $1`, [queued]), /finished/);
    await refusedByTrigger(
      sql.unsafe(
        `UPDATE analytics_exports SET status = 'failed', errors = '{"code": "x", "message": "y"}', finished = now() - interval '1 day' WHERE id = $1`,
        [queued],
      ),
      /finished/,
    );
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

describe('impossible rows are refused, not only impossible transitions', () => {
  const update = (id: string, set: string) => sql.unsafe(`UPDATE analytics_exports SET ${set} WHERE id = $1`, [id]);
  const refuses = async (id: string, set: string, constraint: string) => {
    await assert.rejects(update(id, set), (error: Error & { constraint_name?: string }) => {
      assert.equal(error.constraint_name, constraint, error.message);
      return true;
    });
  };

  describe('a complete export keeps what it produced', () => {
    const changes: Array<[string, string]> = [
      ['object_key', `object_key = 'anx_export_' || id || '/9-00000000/other.csv'`],
      ['number_of_rows', `number_of_rows = 999999`],
      ['total_bytes', `total_bytes = 1`],
      ['rows_written', `rows_written = 999999`],
      ['errors', `errors = '{"code": "x", "message": "y"}'`],
      ['cancel_requested_at', `cancel_requested_at = now()`],
      ['worker_id', `worker_id = 'ghost'`],
      ['started', `started = NULL`],
      ['finished', `finished = now()`],
      ['attempts', `attempts = 7`],
      ['heartbeat_at', `heartbeat_at = now()`],
    ];
    for (const [column, set] of changes) {
      test(`${column} cannot change`, async () => {
        const id = await exportIn('complete');
        const [before] = await sql`SELECT * FROM analytics_exports WHERE id = ${id}`;
        await refusedByTrigger(update(id, set), new RegExp(column));
        const [after] = await sql`SELECT * FROM analytics_exports WHERE id = ${id}`;
        assert.deepEqual(after, before);
      });
    }

    test('a failed export keeps its errors', async () => {
      const id = await exportIn('failed');
      await refusedByTrigger(update(id, `errors = '{"code": "other", "message": "rewritten"}'`), /errors/);
    });

    test('its key is under its own prefix: another export’s key is refused', async () => {
      const other = await exportIn('complete');
      const id = await exportIn('running');
      await refuses(
        id,
        `status = 'complete', number_of_rows = 1, total_bytes = 1, object_key = (SELECT object_key FROM analytics_exports WHERE id = '${other}')`,
        'analytics_exports_object_key_under_its_prefix',
      );
    });

    test('only a complete export has a key', async () => {
      const id = await exportIn('running');
      await refuses(id, `object_key = ${OWN_KEY}`, 'analytics_exports_object_key_only_when_complete');
    });

    test('what may change on a final export still can (the idempotency key is released after 24 hours)', async () => {
      const id = await exportIn('complete');
      await update(id, `idempotency_key = 'k', request_hash = 'h'`);
      await update(id, `idempotency_key = NULL, request_hash = NULL`);
    });
  });

  describe('an INSERT carries no worker fields and no results', () => {
    const presets: Array<[string, string]> = [
      ['worker_id', `'ghost'`],
      ['heartbeat_at', 'now()'],
      ['started', 'now()'],
      ['finished', 'now()'],
      ['attempts', '3'],
      ['cancel_requested_at', 'now()'],
      ['object_key', `'anx_export_x/y.csv'`],
      ['number_of_rows', '1'],
      ['total_bytes', '1'],
      ['rows_written', '1'],
      ['bytes_written', '1'],
      ['errors', `'{"code": "x", "message": "y"}'`],
    ];
    for (const [column, value] of presets) {
      test(`${column} is refused`, async () => {
        const name = `preset ${column}`;
        await refusedByTrigger(
          sql.unsafe(`INSERT INTO analytics_exports (created_by, name, query_id, ${column}) VALUES ($1, $2, $3, ${value})`, [
            userId,
            name,
            queryId,
          ]),
          new RegExp(`cannot carry ${column}`),
        );
        const [stored] = await sql`SELECT count(*)::int AS n FROM analytics_exports WHERE name = ${name}`;
        assert.equal(stored!.n, 0);
      });
    }
  });

  describe('who holds an export changes only through a claim', () => {
    test('running -> running with a new worker_id is refused (no stealing without an attempt)', async () => {
      const id = await exportIn('running');
      await refusedByTrigger(update(id, `worker_id = 'thief'`), /worker_id/);
      const [row] = await sql`SELECT worker_id, attempts FROM analytics_exports WHERE id = ${id}`;
      assert.deepEqual({ ...row }, { worker_id: 'test-worker', attempts: 1 });
    });

    test('started, attempts and a heartbeat other than now() are refused while running', async () => {
      const id = await exportIn('running');
      await refusedByTrigger(update(id, `started = NULL`), /started/);
      await refusedByTrigger(update(id, `started = now() - interval '1 hour'`), /started/);
      await refusedByTrigger(update(id, `attempts = 0`), /attempts/);
      await refusedByTrigger(update(id, `heartbeat_at = now() + interval '1 day'`), /heartbeat_at/);
      await refusedByTrigger(update(id, `heartbeat_at = NULL`), /heartbeat_at/);
      // The heartbeat itself: now() and progress.
      await update(id, `heartbeat_at = now(), rows_written = 5, bytes_written = 50`);
    });

    test('a queued export has no holder to set', async () => {
      const id = await exportIn('queued');
      await refusedByTrigger(update(id, `worker_id = 'w'`), /worker_id/);
      await refusedByTrigger(update(id, `heartbeat_at = now()`), /heartbeat_at/);
    });

    test('a claim sets started and heartbeat_at to now(); a preset heartbeat or start is refused', async () => {
      const id = await exportIn('queued');
      await refusedByTrigger(update(id, `status = 'running', worker_id = 'w', heartbeat_at = now() - interval '1 hour'`), /heartbeat_at/);
      await refusedByTrigger(update(id, `status = 'running', worker_id = 'w', started = now() - interval '1 hour'`), /started/);
      const [claimed] = await sql.begin(
        (tx) => tx`
        UPDATE analytics_exports SET status = 'running', worker_id = 'w' WHERE id = ${id}
        RETURNING heartbeat_at = now() AS fresh_heartbeat, started = now() AS fresh_start, attempts`,
      );
      assert.deepEqual({ ...claimed }, { fresh_heartbeat: true, fresh_start: true, attempts: 1 });
    });

    test('only the claim may give the holder: leaving running clears it, and a writer cannot', async () => {
      const id = await exportIn('running');
      await refusedByTrigger(update(id, `status = 'failed', errors = '{"code": "x", "message": "y"}', worker_id = 'other'`), /worker_id/);
    });
  });

  describe('timestamps are ordered: created <= started <= finished', () => {
    test('created after started is refused', async () => {
      const id = await exportIn('running');
      await refuses(id, `created = now() + interval '1 hour'`, 'analytics_exports_timestamps_ordered');
    });

    test('created after finished is refused, for an export that never started too', async () => {
      const complete = await exportIn('complete');
      await refuses(complete, `created = now() + interval '1 hour'`, 'analytics_exports_timestamps_ordered');
      const cancelled = await exportIn('queued');
      await sql`SELECT cancel_export(${cancelled})`;
      await refuses(cancelled, `created = now() + interval '1 hour'`, 'analytics_exports_timestamps_ordered');
    });
  });

  describe('attempts never exceed max_attempts', () => {
    test('a running export cannot have its budget lowered below its attempts', async () => {
      const id = await exportIn('running');
      await update(id, `status = 'queued'`);
      await update(id, `status = 'running', worker_id = 'w'`);
      await refuses(id, `max_attempts = 1`, 'analytics_exports_attempts_within_max');
    });

    test('an export that used its last attempt cannot go back to queued (it would run once too often)', async () => {
      const id = await exportIn('queued');
      await update(id, `max_attempts = 1`);
      await update(id, `status = 'running', worker_id = 'w'`);
      await refuses(id, `status = 'queued'`, 'analytics_exports_queued_has_an_attempt_left');
      // Handing the attempt back (a shutdown) is allowed, and the next claim is attempt 1 again.
      await update(id, `status = 'queued', attempts = attempts - 1`);
      const [row] =
        await sql`UPDATE analytics_exports SET status = 'running', worker_id = 'w2' WHERE id = ${id} RETURNING attempts, max_attempts`;
      assert.deepEqual({ ...row }, { attempts: 1, max_attempts: 1 });
    });

    test('attempts can only be handed back by one, on the way from running to queued', async () => {
      const id = await exportIn('running');
      await update(id, `status = 'queued'`);
      await update(id, `status = 'running', worker_id = 'w'`);
      await refusedByTrigger(update(id, `status = 'queued', attempts = 0, max_attempts = 5`), /attempts/);
      await refusedByTrigger(update(id, `status = 'failed', errors = '{"code": "x", "message": "y"}', attempts = 0`), /attempts/);
    });
  });

  test('a cancelled running export cannot complete', async () => {
    const id = await exportIn('running');
    await sql`SELECT cancel_export(${id})`;
    await refusedByTrigger(update(id, setClauseFor('complete')), /cancelled: it cannot complete/);
    await update(id, `status = 'failed', errors = '{"code": "cancelled", "message": "cancelled"}'`);
  });
});

describe('the operators’ actions pass the guards', () => {
  test('rescue_stale_exports re-queues a silent export with an attempt left, and fails one on its last attempt', async () => {
    const spare = await exportIn('running');
    const last = await exportIn('queued');
    await sql`UPDATE analytics_exports SET max_attempts = 1 WHERE id = ${last}`;
    await sql.unsafe(`UPDATE analytics_exports SET ${setClauseFor('running')} WHERE id = $1`, [last]);
    const alive = await exportIn('running');
    for (const id of [spare, last]) await ageHeartbeat(sql, id, 10);
    const rescued = await sql<{ id: string }[]>`SELECT id::text FROM rescue_stale_exports(interval '1 minute') AS id`;
    assert.deepEqual(rescued.map((row) => row.id).sort(), [spare, last].sort());
    const rows = await sql`SELECT id, status, attempts, worker_id, errors ->> 'code' AS code, last_error ->> 'code' AS last_code
                             FROM analytics_exports WHERE id IN ${sql([spare, last, alive])}`;
    const byId = new Map(rows.map((row) => [row.id, row]));
    assert.deepEqual(
      { ...byId.get(spare) },
      { id: spare, status: 'queued', attempts: 1, worker_id: null, code: null, last_code: 'worker_lost' },
    );
    assert.deepEqual(
      { ...byId.get(last) },
      { id: last, status: 'failed', attempts: 1, worker_id: null, code: 'worker_lost', last_code: null },
    );
    assert.equal(byId.get(alive)!.status, 'running');
  });

  test('retry_export makes a new export that carries only its definition', async () => {
    const failed = await exportIn('failed');
    const [row] = await sql`SELECT retry_export(${failed}) AS id`;
    const [retry] = await sql`SELECT status, attempts, worker_id, object_key, retry_of FROM analytics_exports WHERE id = ${row!.id}`;
    assert.deepEqual({ ...retry }, { status: 'queued', attempts: 0, worker_id: null, object_key: null, retry_of: failed });
  });
});
