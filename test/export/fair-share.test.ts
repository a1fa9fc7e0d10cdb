import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import type { Sql } from '../../src/db/client';
import { claimExport, type ClaimResult } from '../../src/db/statements/export-attempts';
import { createTestDatabase } from '../support/database';
import { readExport, waitForExport, waitForFinalExport } from '../support/export-rows';
import { createQuery, createUser, insertExport, seedCustomerReadings } from '../support/fixtures';
import { createTestBucket, paceUploadParts, startPacedS3Relay } from '../support/s3';
import { spawnWorker, startTestWorker, waitForLog, workerEnvironment } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * Fair turns between tenants (EXPORT_MAX_RUNNING_PER_CUSTOMER): a tenant with a backlog does not
 * hold every worker while another tenant's export waits, and the limit holds when two workers
 * claim for one tenant at the same instant.
 */

// Made at the top level, before any worker (see test/support/worker.ts).
const queue = await createTestDatabase();
const queueBucket = await createTestBucket();
const processes = await createTestDatabase();
const processesBucket = await createTestBucket();
const claims = await createTestDatabase();

type Seeded = Awaited<ReturnType<typeof seedCustomerReadings>>;

/**
 * Customer A queues six exports, then customer B one, with two worker slots and a limit of 1; B's
 * export must start before A's third. A's first export starts a while ahead of the others, so
 * that A's two running exports do not end in the same instant: when one of them ends, A still
 * runs the other, and a slot that frees up goes to B. (Two ending at once would leave A with
 * none running: its third could then start beside B's, within the limit.)
 */
async function backlogOfAThenB(sql: Sql, a: Seeded, b: Seeded, staggerMs: number): Promise<void> {
  const exportsOfA = [await insertExport(sql, a.user.id, a.queryId, { name: 'A 1' })];
  await waitForExport(sql, exportsOfA[0]!, (row) => row.status === 'running');
  await new Promise((resolve) => setTimeout(resolve, staggerMs));
  for (let i = 1; i < 6; i++) exportsOfA.push(await insertExport(sql, a.user.id, a.queryId, { name: `A ${i + 1}` }));
  // Nothing else is due: A's limit does not leave the second slot idle.
  await waitFor(
    async () => {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM analytics_exports WHERE status = 'running'`;
      return row!.n === 2 ? true : undefined;
    },
    60_000,
    "two of A's exports running at once",
  );
  const exportOfB = await insertExport(sql, b.user.id, b.queryId, { name: 'B' });

  const finals = await Promise.all([...exportsOfA, exportOfB].map((id) => waitForFinalExport(sql, id, 180_000)));
  for (const final of finals) {
    assert.equal(final.status, 'complete', JSON.stringify(final.errors));
    // A refused turn is not an attempt.
    assert.equal(final.attempts, 1);
  }
  const started = await sql<{ id: string }[]>`
    SELECT id::text FROM analytics_exports WHERE id IN ${sql([...exportsOfA, exportOfB])} ORDER BY started, id`;
  const order = started.map((row) => row.id);
  const startOfB = order.indexOf(exportOfB);
  const thirdOfA = order.filter((id) => id !== exportOfB)[2]!;
  assert.ok(startOfB < order.indexOf(thirdOfA), `B started at position ${startOfB + 1} of 7: ${order.join(', ')}`);
}

describe('a customer with a backlog does not hold every worker', async () => {
  test("one worker process, WORKER_CONCURRENCY=2, a limit of 1: B's one export starts before A's third of six", async () => {
    const { sql } = queue;
    // Two parts of 5 MiB per export of A (3 devices x 2 metrics x 10 days of minutes, about 8 MiB
    // of CSV), each part held 1.5 s: an export of A runs for seconds however fast the machine.
    const a = await seedCustomerReadings(sql, 3, 10);
    const b = await seedCustomerReadings(sql, 1, 1);
    const worker = await startTestWorker(queue, queueBucket, { WORKER_CONCURRENCY: '2', EXPORT_MAX_RUNNING_PER_CUSTOMER: '1' });
    paceUploadParts(worker.context.s3, 1500);
    await backlogOfAThenB(sql, a, b, 1500);
    const [exportOfA] = await sql<
      { total_bytes: number }[]
    >`SELECT total_bytes::float8 AS total_bytes FROM analytics_exports WHERE name = 'A 1'`;
    assert.ok(
      exportOfA!.total_bytes > 5 * 1024 * 1024,
      `an export of A is multipart, so its parts are paced (${exportOfA!.total_bytes} bytes)`,
    );
  });

  test("two worker processes of WORKER_CONCURRENCY=1, a limit of 1: B's one export starts before A's third of six", async () => {
    const { sql } = processes;
    const a = await seedCustomerReadings(sql, 1, 1);
    const b = await seedCustomerReadings(sql, 1, 1);
    // Every upload of the processes held 2 s on its way to s3rver.
    const relay = await startPacedS3Relay(processesBucket.config.endpoint!, 2000);
    const environment = workerEnvironment(
      processes,
      { ...processesBucket, config: { ...processesBucket.config, endpoint: relay.endpoint } },
      { WORKER_CONCURRENCY: '1', EXPORT_MAX_RUNNING_PER_CUSTOMER: '1', LOG_LEVEL: 'info' },
    );
    const workers = [spawnWorker(environment), spawnWorker(environment)];
    await Promise.all(workers.map((worker) => waitForLog(worker, (line) => line.msg === 'ready', 60_000)));
    await backlogOfAThenB(sql, a, b, 1000);
    for (const worker of workers) {
      assert.ok(
        worker.logs.some((line) => line.msg === 'export complete'),
        'each process ran exports',
      );
    }
  });
});

describe('the claim', async () => {
  const { sql } = claims;
  const a = await seedCustomerReadings(sql, 1, 1);
  const b = await seedCustomerReadings(sql, 1, 1);
  // One connection each: pool `first` with max 1 runs its BEGIN, claim and COMMIT on one session.
  const first = new pg.Pool({ connectionString: claims.url, max: 1 });
  const second = new pg.Pool({ connectionString: claims.url, max: 1, application_name: 'second claimant' });
  const third = new pg.Pool({ connectionString: claims.url, max: 1 });
  after(() => Promise.all([first.end(), second.end(), third.end()]));
  const limitOne = { maxRunningPerTenant: 1, retryAfterMs: 2000 };
  const claimed = (result: ClaimResult) => (result && 'claimed' in result ? result.claimed : undefined);
  const reset = () => sql`DELETE FROM analytics_exports`;
  /** Until pool `second`'s claim waits for a tenant's lock (an advisory lock). */
  const secondClaimantWaitingForLock = () =>
    waitFor(
      async () => {
        const [row] = await sql<{ waiting: boolean }[]>`
          SELECT wait_event = 'advisory' AS waiting FROM pg_stat_activity WHERE application_name = 'second claimant' AND state = 'active'`;
        return row?.waiting ? true : undefined;
      },
      10_000,
      'the second claim waiting for the lock',
    );

  test('two workers claiming for one customer at the same instant: one runs it, the other is deferred', async () => {
    await reset();
    await insertExport(sql, b.user.id, b.queryId); // other work is due
    const one = await insertExport(sql, a.user.id, a.queryId);
    const two = await insertExport(sql, a.user.id, a.queryId);

    // The first claim's transaction stays open: its export is running, but not yet committed.
    await first.query('BEGIN');
    assert.ok(claimed(await claimExport(first, one, 'worker one', limitOne)));
    const secondClaim = claimExport(second, two, 'worker two', limitOne);
    // The second waits for the customer's lock instead of counting the uncommitted claim as nothing.
    await secondClaimantWaitingForLock();
    await first.query('COMMIT');
    assert.deepEqual(await secondClaim, { deferred: true });

    const deferred = await readExport(sql, two);
    assert.equal(deferred!.status, 'queued');
    assert.equal(deferred!.attempts, 0, 'a refused turn costs no attempt');
    const [job] = await sql<{ in_ms: number; attempts: number }[]>`
      SELECT (extract(epoch FROM run_at - now()) * 1000)::float8 AS in_ms, attempts
        FROM graphile_worker.jobs WHERE key = analytics_export_job_key(${two})`;
    assert.ok(job && job.in_ms > 1000 && job.in_ms <= 2000, `its job comes back about 2 s later (${job?.in_ms} ms)`);
  });

  test("a refused export comes back later the deeper it sits in its customer's backlog", async () => {
    await reset();
    await insertExport(sql, b.user.id, b.queryId); // other work is due
    const running = await insertExport(sql, a.user.id, a.queryId);
    assert.ok(claimed(await claimExport(first, running, 'worker one', limitOne)));
    const backlog = [];
    for (let i = 0; i < 3; i++) backlog.push(await insertExport(sql, a.user.id, a.queryId));
    // The last first: each is refused while the ones queued before it still wait.
    for (const id of [...backlog].reverse()) assert.deepEqual(await claimExport(second, id, 'worker two', limitOne), { deferred: true });
    const comesBackInS = await sql<{ s: number }[]>`
      SELECT extract(epoch FROM j.run_at - j.updated_at)::float8 AS s
        FROM unnest(${backlog}::uuid[]) WITH ORDINALITY AS b(id, n)
        JOIN graphile_worker.jobs j ON j.key = analytics_export_job_key(b.id)
       ORDER BY b.n`;
    // 2 s for the head, 2 s more for each export ahead of it (a limit of 1), from the refusal
    // (the job's updated_at, written by the same statement).
    assert.deepEqual(
      comesBackInS.map((row) => row.s),
      [2, 4, 6],
    );
  });

  test('with nothing else due, the customer runs beyond its limit', async () => {
    await reset();
    const one = await insertExport(sql, a.user.id, a.queryId);
    const two = await insertExport(sql, a.user.id, a.queryId);
    assert.ok(claimed(await claimExport(first, one, 'worker one', limitOne)));
    assert.ok(claimed(await claimExport(second, two, 'worker two', limitOne)));
  });

  test("with nothing else due, one customer's claims do not wait for each other's commit", async () => {
    await reset();
    const one = await insertExport(sql, a.user.id, a.queryId);
    const two = await insertExport(sql, a.user.id, a.queryId);
    await first.query('BEGIN');
    try {
      assert.ok(claimed(await claimExport(first, one, 'worker one', limitOne)));
      // The first claim is not committed: the second goes ahead beside it rather than waiting for it.
      const secondClaim = claimExport(second, two, 'worker two', limitOne);
      const waited = new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 10_000).unref());
      const result = await Promise.race([secondClaim, waited]);
      assert.notEqual(result, 'waited', 'the second claim waited for the first to commit');
      assert.ok(claimed(result as ClaimResult));
    } finally {
      await first.query('COMMIT');
    }
  });

  test("a claim that found nothing else due is refused when another customer's export is due once it holds the lock", async () => {
    await reset();
    const c = await seedCustomerReadings(sql, 1, 1);
    const ofB = await insertExport(sql, b.user.id, b.queryId);
    const one = await insertExport(sql, a.user.id, a.queryId);
    // B's export is due: A's first claim takes the lock exclusively, and stays uncommitted.
    await first.query('BEGIN');
    assert.ok(claimed(await claimExport(first, one, 'worker one', limitOne)));
    // B's export starts (B at its limit).
    assert.ok(claimed(await claimExport(third, ofB, 'worker three', limitOne)));
    // C's export, due from before A's second claim starts, but committed only while that claim waits.
    let inserted: () => void = () => undefined;
    let release: () => void = () => undefined;
    const insertedOfC = new Promise<void>((resolve) => (inserted = resolve));
    const commitOfC = sql.begin(async (tx) => {
      await insertExport(tx, c.user.id, c.queryId);
      inserted();
      await new Promise<void>((resolve) => (release = resolve));
    });
    await insertedOfC;
    // Nothing else is due yet: A's second claim takes the shared path, and waits for the first's lock.
    const two = await insertExport(sql, a.user.id, a.queryId);
    const secondClaim = claimExport(second, two, 'worker two', limitOne);
    await secondClaimantWaitingForLock();
    release();
    await commitOfC;
    await first.query('COMMIT');
    // A runs its limit and C's export is due: A's second export waits its turn.
    assert.deepEqual(await secondClaim, { deferred: true });
  });

  test("another customer's due export counts only while that customer is under its own limit", async () => {
    await reset();
    const runningOfB = await insertExport(sql, b.user.id, b.queryId);
    assert.ok(claimed(await claimExport(first, runningOfB, 'worker one', limitOne)));
    await insertExport(sql, b.user.id, b.queryId); // due, but B is at its limit
    const one = await insertExport(sql, a.user.id, a.queryId);
    const two = await insertExport(sql, a.user.id, a.queryId);
    assert.ok(claimed(await claimExport(first, one, 'worker one', limitOne)));
    assert.ok(claimed(await claimExport(second, two, 'worker two', limitOne)), 'B cannot start, so A may use the worker');
  });

  test('a limit of 0 is no limit', async () => {
    await reset();
    await insertExport(sql, b.user.id, b.queryId);
    const one = await insertExport(sql, a.user.id, a.queryId);
    const two = await insertExport(sql, a.user.id, a.queryId);
    const noLimit = { maxRunningPerTenant: 0, retryAfterMs: 2000 };
    assert.ok(claimed(await claimExport(first, one, 'worker one', noLimit)));
    assert.ok(claimed(await claimExport(second, two, 'worker two', noLimit)));
  });

  test("a partner's users share one turn, whichever customer they export for; admins share another", async () => {
    await reset();
    const [partner] = await sql<{ partner_id: string }[]>`SELECT partner_id::text FROM customers WHERE id = ${a.customerId}`;
    const partnerUsers = [
      await createUser(sql, 'partner', { partnerId: partner!.partner_id }),
      await createUser(sql, 'partner', { partnerId: partner!.partner_id }),
    ];
    const admin = await createUser(sql, 'admin');
    const definition = { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z' };
    const exportBy = async (userId: string) =>
      insertExport(sql, userId, await createQuery(sql, userId, definition, { customerScopes: [a.customerId] }), {
        customerScopes: [a.customerId],
      });
    await insertExport(sql, b.user.id, b.queryId); // other work is due
    const first1 = await exportBy(partnerUsers[0]!.id);
    const first2 = await exportBy(partnerUsers[1]!.id);
    assert.ok(claimed(await claimExport(first, first1, 'worker one', limitOne)));
    assert.deepEqual(await claimExport(second, first2, 'worker two', limitOne), { deferred: true });
    // Customer A's own export is not charged for its partner's.
    assert.ok(claimed(await claimExport(second, await insertExport(sql, a.user.id, a.queryId), 'worker two', limitOne)));
    assert.ok(claimed(await claimExport(second, await exportBy(admin.id), 'worker two', limitOne)));
    assert.deepEqual(await claimExport(second, await exportBy(admin.id), 'worker two', limitOne), { deferred: true });
  });
  test("the turn is decided without reading the customer's whole backlog", async () => {
    await reset();
    const running = await insertExport(sql, a.user.id, a.queryId);
    assert.ok(claimed(await claimExport(first, running, 'worker one', limitOne)));
    const backlog: string[] = [];
    for (let i = 0; i < 200; i++) backlog.push(await insertExport(sql, a.user.id, a.queryId));
    // Statistics of the table as it is now, and none of the rows the earlier tests deleted.
    await sql`VACUUM ANALYZE analytics_exports`;
    // A is at its limit, so the turn asks whether any other customer has work due (none has).
    // A session of its own: its statistics of this transaction are this call's alone.
    const session = new pg.Client({ connectionString: claims.url });
    await session.connect();
    try {
      await session.query('BEGIN');
      const { rows: turn } = await session.query<{ go: boolean }>('SELECT analytics_export_take_turn($1, 1, $2) AS go', [
        backlog.at(-1),
        '2 s',
      ]);
      assert.equal(turn[0]!.go, true, 'nothing else is due: A may run beyond its limit');
      // Rows of analytics_exports read by sequential scans, and entries read from its indexes.
      const { rows: read } = await session.query<{ n: number }>(`
        SELECT (pg_stat_get_xact_tuples_returned('analytics_exports'::regclass)
                + (SELECT sum(pg_stat_get_xact_tuples_returned(indexrelid)) FROM pg_index WHERE indrelid = 'analytics_exports'::regclass))::int AS n`);
      await session.query('ROLLBACK');
      assert.ok(read[0]!.n < 50, `read ${read[0]!.n} rows and index entries of analytics_exports for a backlog of 200`);
    } finally {
      await session.end();
    }
  });
});
