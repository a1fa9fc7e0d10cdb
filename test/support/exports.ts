import assert from 'node:assert/strict';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import type { Queryable, Sql } from '../../src/db/client';
import {
  claimExport,
  completeExport,
  failExport,
  recordProgress,
  type Claim,
  type ExportErrors,
} from '../../src/db/statements/export-attempts';
import { claimSlice, sliceExport, type SliceClaim } from '../../src/db/statements/export-slices';
import { DEFAULT_ENCODING } from '../../src/exports/formats';
import { exportObjectKey } from '../../src/exports/naming';
import type { TestBucket } from './s3';

/**
 * Moves exports through the state machine the way the worker would, with the worker's own
 * statements (src/db/statements/export-attempts.ts), so API tests can see every state without
 * running the worker.
 */

const WORKER_ID = 'test-worker';
/** The fixture moves exports where a test wants them: no tenant waits its turn. */
export const NO_FAIR_SHARE = { maxRunningPerTenant: 0, retryAfterMs: 0 };

/** The worker's statements run on node-postgres: one pool per test database, opened on first use. */
const pools = new Map<string, pg.Pool>();
function workerPool(sql: Sql): pg.Pool {
  const { host, port, database, user, pass } = sql.options;
  const key = `${host[0]}:${port[0]}/${database}`;
  let pool = pools.get(key);
  if (!pool) {
    const password = typeof pass === 'function' ? undefined : (pass ?? undefined);
    pool = new pg.Pool({ host: host[0], port: port[0], database, user, password, max: 2, allowExitOnIdle: true });
    // The test database is dropped at the end of the file, under the pool's idle connections.
    pool.on('error', () => {});
    pools.set(key, pool);
  }
  return pool;
}

/** The claim this fixture's worker holds on a running export. */
async function heldClaim(sql: Queryable, id: string): Promise<Claim> {
  const [row] = await sql<{ attempts: number; max_attempts: number; created_by: string; name: string }[]>`
    SELECT attempts, max_attempts, created_by, name FROM analytics_exports WHERE id = ${id} AND status = 'running' AND worker_id = ${WORKER_ID}`;
  if (!row) throw new Error(`export ${id} is not running on the fixture's worker`);
  return {
    exportId: id,
    workerId: WORKER_ID,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    createdBy: row.created_by,
    name: row.name,
    cancelRequested: false,
    queuedMs: 0,
    definition: null,
    ...DEFAULT_ENCODING,
  };
}

export async function markRunning(sql: Sql, id: string, progress: { rows: number; bytes: number } = { rows: 0, bytes: 0 }) {
  const claimed = await claimExport(workerPool(sql), id, WORKER_ID, NO_FAIR_SHARE);
  const claim = claimed && 'claimed' in claimed ? claimed.claimed : undefined;
  if (!claim) throw new Error(`export ${id} could not be claimed`);
  await recordProgress(workerPool(sql), claim, progress);
}

/**
 * Makes a running export look as if its worker had gone silent `minutes` ago. Only time can do
 * that to a real row (the status trigger lets no writer move heartbeat_at but to now()), so the
 * test steps around the trigger for this one statement; the CHECKs still hold.
 */
export async function ageHeartbeat(sql: Sql, id: string, minutes: number) {
  await sql.begin(async (tx) => {
    await tx`SET LOCAL session_replication_role = replica`;
    await tx`UPDATE analytics_exports SET heartbeat_at = now() - make_interval(mins => ${minutes}) WHERE id = ${id} AND status = 'running'`;
  });
}

/** Uploads the CSV to where the worker would and completes the export. Returns the object key. */
export async function markComplete(sql: Sql, bucket: TestBucket, id: string, csv: string): Promise<string> {
  const [row] = await sql<{ status: string }[]>`SELECT status FROM analytics_exports WHERE id = ${id}`;
  if (row!.status === 'queued') await markRunning(sql, id);
  const claim = await heldClaim(sql, id);
  const key = exportObjectKey(id, claim.attempt, claim.createdBy);
  await bucket.client.send(new PutObjectCommand({ Bucket: bucket.config.bucket, Key: key, Body: csv, ContentType: 'text/csv' }));
  const lines = csv.trimEnd().split('\n').length - 1;
  const files = [{ key, rows: lines, bytes: Buffer.byteLength(csv) }];
  if (!(await completeExport(workerPool(sql), claim, { objectKey: key, files }))) {
    throw new Error(`export ${id} could not be completed`);
  }
  return key;
}

export async function markFailed(sql: Sql, id: string, errors: ExportErrors = { code: 'query_error', message: 'boom' }) {
  const [row] = await sql<{ status: string }[]>`SELECT status FROM analytics_exports WHERE id = ${id}`;
  if (row!.status === 'queued') await markRunning(sql, id);
  if (!(await failExport(workerPool(sql), await heldClaim(sql, id), errors))) throw new Error(`export ${id} could not be failed`);
}

/** An export sliced by hand: its id, and a way to claim one of its slices as a given worker. */
export interface SlicedByHand {
  id: string;
  holds(slice: number, workerId: string): Promise<SliceClaim>;
}

/**
 * Claims export `id` as a worker that does not exist and divides it into three slices at
 * 2026-01-02 and 2026-01-03 (UTC), with the worker's own statements on `pool`.
 */
export async function sliceInThreeByHand(pool: pg.Pool, id: string): Promise<SlicedByHand> {
  const claimed = await claimExport(pool, id, 'slicer', NO_FAIR_SHARE);
  assert.ok(claimed && 'claimed' in claimed);
  assert.equal(await sliceExport(pool, claimed.claimed, ['2026-01-02T00:00:00+00:00', '2026-01-03T00:00:00+00:00']), true);
  return {
    id,
    async holds(slice, workerId) {
      const held = await claimSlice(pool, id, slice, workerId);
      assert.ok(held, `slice ${slice} claimed`);
      return held;
    },
  };
}
