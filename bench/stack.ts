import path from 'node:path';
import postgres from 'postgres';
import { migrate } from '../src/db/migrate';
import { startEmbeddedPostgres } from '../src/embedded/postgres';
import { createS3Client } from '../src/storage/s3-client';
import { vacuumReadingTables } from '../src/db/statements/readings';
import { generateReadings } from '../src/demo/readings';
import { type Child, onCleanup, startHelper, stopChild, waitFor } from './processes';

/**
 * What the benches run the service against, each its own: an embedded Postgres with a migrated
 * `bench` database, and s3rver in a process of its own (bench/s3-server.ts), so that neither the
 * bench nor the worker shares its event loop. Both are stopped at the bench's end.
 */

export interface BenchDatabase {
  /** The cluster's data directory (its postmaster.pid names the postmaster). */
  dataDir: string;
  databaseUrl: string;
  /** The bench's own connections (6). */
  sql: postgres.Sql;
}

export async function startBenchDatabase(
  tmp: string,
  options: { unsafeFast?: boolean; settings?: string[]; onLog?: (line: string) => void } = {},
): Promise<BenchDatabase> {
  const dataDir = path.join(tmp, 'postgres');
  const pg = await startEmbeddedPostgres({ dataDir, ...options });
  onCleanup(() => pg.stop());
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  await admin.unsafe('CREATE DATABASE bench');
  await admin.end();
  const url = new URL(pg.url);
  url.pathname = '/bench';
  const databaseUrl = url.toString();
  await migrate(databaseUrl);
  const sql = postgres(databaseUrl, { max: 6, onnotice: () => {} });
  onCleanup(() => sql.end({ timeout: 5 }));
  return { dataDir, databaseUrl, sql };
}

/** s3rver's keys, which it accepts from anyone. */
const S3RVER_CREDENTIALS = { S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER' } as const;

export interface BenchS3 {
  process: Child;
  endpoint: string;
  bucket: string;
  /** An S3 client of the bench's own (to remove objects it no longer needs). */
  client: ReturnType<typeof createS3Client>;
  /** The service's S3 settings for this server and bucket. */
  serviceEnv: Record<string, string>;
}

export async function startBenchS3(tmp: string, bucket: string): Promise<BenchS3> {
  const s3 = startHelper('bench/s3-server.ts', [path.join(tmp, 's3'), bucket]);
  onCleanup(() => stopChild(s3));
  const endpoint = await waitFor('s3rver', () => /"endpoint":"([^"]+)"/.exec(s3.output())?.[1], { ms: 120_000, watching: [s3] });
  const client = createS3Client({
    endpoint,
    bucket,
    region: 'us-east-1',
    accessKeyId: S3RVER_CREDENTIALS.S3_ACCESS_KEY_ID,
    secretAccessKey: S3RVER_CREDENTIALS.S3_SECRET_ACCESS_KEY,
    forcePathStyle: true,
  });
  onCleanup(async () => client.destroy());
  return { process: s3, endpoint, bucket, client, serviceEnv: { S3_ENDPOINT: endpoint, S3_BUCKET: bucket, ...S3RVER_CREDENTIALS } };
}

/**
 * Readings every minute of [start + fromMinute, start + toMinute) for every device and metric,
 * with the triggers off: `writers` transactions at once, each on its share of the devices (every
 * writers-th), `chunkMinutes` at a time; then VACUUM (ANALYZE) of the readings' tables.
 */
export async function seedReadings(
  sql: postgres.Sql,
  plan: { deviceIds: string[]; metrics: string[]; start: Date; fromMinute: number; toMinute: number },
  writing: { writers: number; chunkMinutes: number },
): Promise<void> {
  const at = (minute: number) => new Date(plan.start.getTime() + minute * 60_000);
  const { writers, chunkMinutes } = writing;
  const jobs: Array<{ deviceIds: string[]; from: number; to: number }> = [];
  for (let from = plan.fromMinute; from < plan.toMinute; from += chunkMinutes) {
    for (let w = 0; w < writers; w++)
      jobs.push({
        deviceIds: plan.deviceIds.filter((_id, n) => n % writers === w),
        from,
        to: Math.min(plan.toMinute, from + chunkMinutes),
      });
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++]!;
        await sql.begin(async (tx) => {
          await tx`SET LOCAL session_replication_role = replica`;
          await generateReadings(tx, { deviceIds: job.deviceIds, metrics: plan.metrics, start: at(job.from), end: at(job.to), step: '1m' });
        });
      }
    }),
  );
  // As a deployment's autovacuum would have, long before anyone exports the readings: without
  // statistics on devices the planner takes the export's devices for one and sorts every reading
  // in one process; without the vacuum the bench's first export would set the hint bits of every
  // new page for the COPY alone that follows it, with autovacuum's pass running under both.
  await vacuumReadingTables(sql);
  // And written out: otherwise the checkpoints that write the load's pages (and the vacuum's)
  // fall in the middle of the measurements that follow.
  await sql`CHECKPOINT`;
}
