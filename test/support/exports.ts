import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Queryable, Sql } from '../../src/db/client';
import { exportObjectKey } from '../../src/exports/naming';
import type { TestBucket } from './s3';

/**
 * Moves exports through the state machine the way the worker would, in plain SQL through the
 * legal transitions only, so API tests can see every state without running the worker.
 */

export async function markRunning(sql: Queryable, id: string, progress: { rows: number; bytes: number } = { rows: 0, bytes: 0 }) {
  await sql`UPDATE analytics_exports SET status = 'running', worker_id = 'test-worker' WHERE id = ${id}`;
  await sql`UPDATE analytics_exports SET rows_written = ${progress.rows}, bytes_written = ${progress.bytes} WHERE id = ${id}`;
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
export async function markComplete(sql: Queryable, bucket: TestBucket, id: string, csv: string): Promise<string> {
  const [row] = await sql<{ status: string }[]>`SELECT status FROM analytics_exports WHERE id = ${id}`;
  if (row!.status === 'queued') await markRunning(sql, id);
  const [claimed] = await sql<{ created_by: string; attempts: number }[]>`SELECT created_by, attempts FROM analytics_exports WHERE id = ${id}`;
  const key = exportObjectKey(id, claimed!.attempts, claimed!.created_by);
  await bucket.client.send(new PutObjectCommand({ Bucket: bucket.config.bucket, Key: key, Body: csv, ContentType: 'text/csv' }));
  const lines = csv.trimEnd().split('\n').length - 1;
  await sql`
    UPDATE analytics_exports SET status = 'complete', number_of_rows = ${lines}, total_bytes = ${Buffer.byteLength(csv)}, object_key = ${key}
     WHERE id = ${id}`;
  return key;
}

export async function markFailed(sql: Queryable, id: string, errors = { code: 'query_error', message: 'boom' }) {
  const [row] = await sql<{ status: string }[]>`SELECT status FROM analytics_exports WHERE id = ${id}`;
  if (row!.status === 'queued') await markRunning(sql, id);
  await sql`UPDATE analytics_exports SET status = 'failed', errors = ${JSON.stringify(errors)}::jsonb WHERE id = ${id}`;
}
