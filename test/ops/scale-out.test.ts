import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { pino } from 'pino';
import { generateReadings } from '../../src/demo/readings';
import { parseExportObjectKey } from '../../src/exports/naming';
import { sweepOrphanedObjects } from '../../tasks/sweep-orphaned-objects';
import { createTestDatabase } from '../support/database';
import { createCustomer, createDevice, createPartner, createQuery, createUser } from '../support/fixtures';
import { createTestBucket } from '../support/s3';
import { spawnWorker, waitForLog, workerEnvironment, type WorkerProcess } from '../support/worker';
import { waitFor } from '../support/wait';

/**
 * Scaled out as compose's "scaled" profile runs it: one API process (ROLE=api) and three worker
 * processes (ROLE=worker) on one database. 300 exports posted over HTTP all complete exactly
 * once, with exact counts and one object each, although one worker is killed (SIGKILL) while it
 * holds exports: the others rescue and finish them.
 */

const EXPORTS = 300;
const ROWS = 60; // one device, one metric, an hour of minutes: small, so 300 fit a loaded 2-core machine

const database = await createTestDatabase();
const { sql } = database;
const bucket = await createTestBucket();
const customerId = await createCustomer(sql, await createPartner(sql));
const user = await createUser(sql, 'customer', { customerId });
const deviceId = await createDevice(sql, customerId);
await generateReadings(sql, {
  deviceIds: [deviceId],
  metrics: ['temperature'],
  start: new Date('2026-01-01T00:00:00Z'),
  end: new Date('2026-01-01T01:00:00Z'),
  step: '1m',
});
const queryId = await createQuery(
  sql,
  user.id,
  { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z' },
  { customerScopes: [customerId] },
);
const environment = (overrides: Record<string, string>) =>
  // Short, so the killed worker's exports are rescued soon; not so short that a busy (2-core)
  // machine delays a live worker's heartbeat past it.
  workerEnvironment(database, bucket, { LOG_LEVEL: 'info', EXPORT_HEARTBEAT_TIMEOUT_S: '5', ...overrides });

async function post(baseUrl: string, name: string): Promise<string> {
  const response = await fetch(`${baseUrl}/analytics/export`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, query: queryId }),
  });
  const body = (await response.json()) as { id: string; status: string };
  assert.equal(response.status, 201, JSON.stringify(body));
  return body.id;
}

async function countWhere(status: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM analytics_exports WHERE status = ${status}::export_status`;
  return row!.n;
}

test(`one API and three workers run ${EXPORTS} exports posted over HTTP exactly once; a worker killed mid-run loses nothing`, async () => {
  const apiProcess = spawnWorker(environment({ ROLE: 'api' }));
  const listening = await waitForLog(apiProcess, (line) => line.msg === 'API listening', 60_000);
  const baseUrl = String(listening.baseUrl);
  const workers: WorkerProcess[] = [1, 2, 3].map(() => spawnWorker(environment({ ROLE: 'worker', WORKER_CONCURRENCY: '4' })));
  await Promise.all(workers.map((worker) => waitForLog(worker, (line) => line.msg === 'ready', 60_000)));

  const ids: string[] = [];
  for (let batch = 0; batch < EXPORTS; batch += 20) {
    ids.push(...(await Promise.all(Array.from({ length: 20 }, (_, i) => post(baseUrl, `scale ${batch + i}`)))));
  }
  assert.equal(new Set(ids).size, EXPORTS);

  // Kill the first worker while it holds exports, once the run is well under way.
  const doomed = workers[0]!;
  const doomedId = await waitFor(
    async () => {
      const [row] = await sql<{ worker_id: string }[]>`
        SELECT worker_id FROM analytics_export_jobs
         WHERE status = 'running' AND worker_id LIKE ${`%:${doomed.child.pid}:%`}
           AND (SELECT count(*) FROM analytics_exports WHERE status = 'complete') >= 30
         LIMIT 1`;
      return row?.worker_id;
    },
    60_000,
    'the first worker to hold an export mid-run',
    10,
  );
  doomed.kill('SIGKILL');
  await doomed.exited;
  const survivors = workers.slice(1);

  // A test of correctness, not speed: on a loaded two-core machine 300 exports can take minutes.
  await waitFor(
    async () => ((await countWhere('complete')) + (await countWhere('failed')) === EXPORTS ? true : undefined),
    360_000,
    'every export to finish',
    200,
  ).catch(async (error: Error) => {
    // What an operator would look at: the unfinished exports and their jobs.
    const unfinished = await sql`
        SELECT e.id, e.status, e.attempts, e.worker_id, e.heartbeat_age, e.run_at, e.error_code,
               j.locked_by, j.attempts AS job_attempts, j.last_error AS job_error
          FROM analytics_export_jobs e LEFT JOIN graphile_worker.jobs j ON j.key = 'analytics_export:' || e.id
         WHERE e.status IN ('queued', 'running')`;
    throw new Error(`${error.message}: ${JSON.stringify(unfinished)}`);
  });

  const rows = await sql<
    {
      id: string;
      status: string;
      attempts: number;
      number_of_rows: number;
      total_bytes: number;
      object_key: string;
      last_error: { code: string; worker_id?: string } | null;
    }[]
  >`
    SELECT id, status, attempts, number_of_rows::float8 AS number_of_rows, total_bytes::float8 AS total_bytes, object_key, last_error
      FROM analytics_exports`;
  assert.equal(rows.length, EXPORTS);
  for (const row of rows) {
    assert.equal(row.status, 'complete', JSON.stringify(row));
    assert.equal(row.number_of_rows, ROWS);
  }
  // Exports run more than once only because a worker was lost: the killed one (and, on a machine
  // too busy to send a heartbeat in time, a live one whose late attempt then stands down).
  const rescued = rows.filter((row) => row.attempts > 1);
  assert.ok(
    rescued.some((row) => row.last_error?.worker_id === doomedId),
    'the killed worker held exports, and they were rescued',
  );
  for (const row of rescued) assert.equal(row.last_error?.code, 'worker_lost', JSON.stringify(row));

  // Each export owns one object, of the size it reports. The killed worker's attempts may have
  // left objects of their own (each attempt writes its own key): owned by no export, they are
  // all the orphan sweep removes, and then exactly one object per export remains.
  const listObjects = async () => {
    const objects = new Map<string, number>();
    let token: string | undefined;
    do {
      const page = await bucket.client.send(new ListObjectsV2Command({ Bucket: bucket.config.bucket, ContinuationToken: token }));
      for (const object of page.Contents ?? []) objects.set(object.Key!, object.Size!);
      token = page.NextContinuationToken;
    } while (token);
    return objects;
  };
  for (const row of rows) assert.equal((await listObjects()).get(row.object_key), row.total_bytes, row.id);
  const rescuedIds = new Set(rescued.map((row) => row.id));
  const leftovers = [...(await listObjects()).keys()].filter((key) => !rows.some((row) => row.object_key === key));
  for (const key of leftovers) assert.ok(rescuedIds.has(parseExportObjectKey(key)?.exportId ?? ''), `${key} is a lost attempt's`);
  const swept = await sweepOrphanedObjects(
    { database, s3: bucket.client, logger: pino({ level: 'silent' }), config: { s3: bucket.config } },
    0,
  );
  assert.equal(swept.deleted, leftovers.length);
  const objects = await listObjects();
  assert.equal(objects.size, EXPORTS);
  for (const row of rows) assert.equal(objects.get(row.object_key), row.total_bytes, row.id);

  // No export was completed twice, and the survivors finished every rescued one.
  const completions = workers.flatMap((worker) =>
    worker.logs.filter((line) => line.msg === 'export complete').map((line) => String(line.export_id)),
  );
  assert.equal(new Set(completions).size, completions.length, 'no export completed twice');
  const bySurvivors = new Set(
    survivors.flatMap((worker) => worker.logs.filter((line) => line.msg === 'export complete').map((line) => String(line.export_id))),
  );
  for (const row of rescued) assert.ok(bySurvivors.has(row.id), `rescued ${row.id} finished by a survivor`);
  for (const worker of survivors)
    assert.ok(bySurvivors.size > 0 && worker.logs.some((line) => line.msg === 'export complete'), 'every survivor took part');

  for (const process of [...survivors, apiProcess]) process.kill('SIGTERM');
  for (const process of [...survivors, apiProcess]) assert.deepEqual(await process.exited, { code: 0, signal: null });
});
