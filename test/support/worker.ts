import { spawn, type ChildProcess } from 'node:child_process';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { after } from 'node:test';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { loadConfig, type Config } from '../../src/config';
import type { ServiceContext } from '../../src/context';
import type { Queryable } from '../../src/db/client';
import { createLogger } from '../../src/logger';
import { createMetrics } from '../../src/observability/metrics';
import { exportPrefix } from '../../src/exports/naming';
import { listObjectPages } from '../../src/storage/objects';
import { createS3Client } from '../../src/storage/s3-client';
import { ROOT as root, SERVICE_COMMAND } from './built';
import { startWorker } from '../../src/service';
import type { RunningWorker } from '../../src/worker/runner';
import type { TestDatabase } from './database';
import type { TestBucket } from './s3';

/**
 * Workers for tests: in this process (startTestWorker) or as real child processes (spawnWorker).
 * Every worker is stopped, and every child killed, when the file's tests are done, before its
 * databases are dropped: this module's `after` hook is registered when it is imported, so it
 * runs before those of createTestDatabase (hooks run in the order they were registered; create
 * databases at the top level of a file that starts workers, not inside describe()).
 */

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup().catch((error: unknown) => console.error('worker cleanup:', error))));
});

const LOG_LEVEL = process.env.TEST_LOG_LEVEL ?? 'silent';

/** The worker's environment for a test database and bucket; `overrides` are more variables. */
export function workerEnvironment(
  database: TestDatabase,
  bucket: TestBucket,
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    ROLE: 'worker',
    // Each worker process serves /healthz, /readyz and /metrics: on a free port, so many can run.
    PORT: '0',
    DATABASE_URL: database.url,
    S3_ENDPOINT: bucket.config.endpoint!,
    S3_BUCKET: bucket.config.bucket,
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    LOG_LEVEL,
    WORKER_CONCURRENCY: '2',
    EXPORT_HEARTBEAT_TIMEOUT_S: '2',
    EXPORT_RETRY_DELAY_S: '0',
    EXPORT_PART_SIZE_MIB: '5',
    EXPORT_UPLOAD_QUEUE_SIZE: '2',
    SHUTDOWN_GRACE_S: '5',
    ...overrides,
  };
}

export function testConfig(database: TestDatabase, bucket: TestBucket, overrides: Record<string, string> = {}): Config {
  return loadConfig(workerEnvironment(database, bucket, overrides));
}

/** A worker in this process (the export task, cancel listener and rescuer), stopped after the file. */
export async function startTestWorker(
  database: TestDatabase,
  bucket: TestBucket,
  overrides: Record<string, string> = {},
): Promise<RunningWorker & { context: ServiceContext }> {
  const config = testConfig(database, bucket, overrides);
  const context: ServiceContext = {
    config,
    databaseUrl: database.url,
    database,
    // A client of its own: the test may point the worker somewhere else than its bucket's client.
    s3: createS3Client(config.s3),
    logger: createLogger(config.logLevel),
    metrics: createMetrics(database.sql),
  };
  const worker = await startWorker(context);
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= worker.stop().finally(() => context.s3.destroy()));
  cleanups.push(stop);
  // The worker's tasks upload through a client of its own (S3_MAX_ATTEMPTS): tests that watch or
  // delay the worker's S3 requests hook that one.
  return { ...worker, stop, context: { ...context, s3: worker.s3 } };
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Every log line so far, parsed. */
  logs: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** A real worker process (bin/service, ROLE=worker), killed after the file whatever happens. */
export function spawnWorker(environment: Record<string, string>): WorkerProcess {
  const child = spawn(SERVICE_COMMAND, [], {
    cwd: root,
    env: { ...process.env, ...environment, LOG_LEVEL: environment.LOG_LEVEL === 'silent' ? 'info' : (environment.LOG_LEVEL ?? 'info') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': by then every line the process wrote has been read.
    child.on('close', (code, signal) => {
      if (code !== 0 && code !== null && stderr) process.stderr.write(`worker ${child.pid} stderr:\n${stderr}\n`);
      resolve({ code, signal });
    }),
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, logs, exited, kill: (signal = 'SIGTERM') => void child.kill(signal) };
}

/** Resolves when the process has logged a line for which `match` is true. */
export async function waitForLog(
  worker: WorkerProcess,
  match: (line: Record<string, unknown>) => boolean,
  timeoutMs = 30_000,
): Promise<Record<string, unknown>> {
  return waitFor(() => worker.logs.find(match), timeoutMs, 'worker log line');
}

/** Polls `probe` until it returns something other than undefined. */
export async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
  what = 'condition',
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export interface ExportRow {
  id: string;
  status: 'queued' | 'running' | 'complete' | 'failed';
  errors: { code: string; message: string; [key: string]: unknown } | null;
  last_error: { code: string; message: string; [key: string]: unknown } | null;
  number_of_rows: number | null;
  total_bytes: number | null;
  rows_written: number | null;
  bytes_written: number | null;
  object_key: string | null;
  attempts: number;
  worker_id: string | null;
  heartbeat_at: string | null;
  cancel_requested_at: string | null;
}

/**
 * The backends of this database still running an export's COPY. An idle connection of a worker's
 * COPY pool shows its last COPY in pg_stat_activity too: it is not counted.
 */
export async function copyBackends(database: TestDatabase): Promise<number> {
  const [row] = await database.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = ${database.name} AND query LIKE 'COPY (%' AND state <> 'idle' AND pid <> pg_backend_pid()`;
  return row!.n;
}

export async function readExport(sql: Queryable, id: string): Promise<ExportRow | undefined> {
  const [row] = await sql<ExportRow[]>`
    SELECT id, status, errors, last_error, number_of_rows::float8 AS number_of_rows, total_bytes::float8 AS total_bytes,
           rows_written::float8 AS rows_written, bytes_written::float8 AS bytes_written, object_key, attempts, worker_id,
           heartbeat_at, cancel_requested_at
      FROM analytics_exports WHERE id = ${id}`;
  return row;
}

/** Waits until the export is complete or failed and returns it. */
export function waitForFinalExport(sql: Queryable, id: string, timeoutMs = 60_000): Promise<ExportRow> {
  return waitForExport(sql, id, (row) => row.status === 'complete' || row.status === 'failed', timeoutMs);
}

export function waitForExport(sql: Queryable, id: string, predicate: (row: ExportRow) => boolean, timeoutMs = 60_000): Promise<ExportRow> {
  return waitFor(
    async () => {
      const row = await readExport(sql, id);
      return row && predicate(row) ? row : undefined;
    },
    timeoutMs,
    `export ${id}`,
  );
}

/** The same SELECT run through a plain COPY on a connection of its own: what the export must equal. */
export async function directCopy(databaseUrl: string, select: string): Promise<Buffer> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const chunks: Buffer[] = [];
    const stream = client.query(copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv, HEADER)`));
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } finally {
    await client.end();
  }
}

export async function getObject(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<{ body: Buffer; contentType?: string; contentDisposition?: string }> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = Buffer.from(await response.Body!.transformToByteArray());
  return { body, contentType: response.ContentType, contentDisposition: response.ContentDisposition };
}

/** The keys of every object under the export's prefix, sorted. */
export async function objectsOf(client: S3Client, bucket: string, exportId: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of listObjectPages(client, bucket, exportPrefix(exportId))) keys.push(...page.map((object) => object.key));
  return keys.sort();
}

export async function objectExists(client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}
