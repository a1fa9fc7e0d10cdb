import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { loadConfig, type Config } from '../../src/config';
import type { ServiceContext } from '../../src/context';
import { createLogger } from '../../src/logger';
import { createMetrics } from '../../src/observability/metrics';
import { createS3Client } from '../../src/storage/s3-client';
import { ROOT as root, SERVICE_COMMAND } from './built';
import { startWorker } from '../../src/service';
import type { RunningWorker } from '../../src/worker/runner';
import type { TestDatabase } from './database';
import type { TestBucket } from './s3';
import { waitFor } from './wait';

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
