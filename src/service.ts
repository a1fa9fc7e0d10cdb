import fs from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { createApp } from './api/app';
import { hashApiKey, issueApiKey } from './auth/api-keys';
import type { Config } from './config';
import type { ServiceContext } from './context';
import { createDatabase, type Sql } from './db/client';
import { apiKeyIsActive } from './db/statements/api-keys';
import { migrate } from './db/migrate';
import { readDevFile, writeDevFile } from './dev-file';
import { seedDemoData } from './demo/seed';
import { ExportWaits } from './exports/export-waits';
import { startEmbeddedPostgres, type RunningPostgres } from './embedded/postgres';
import { EMBEDDED_S3_CREDENTIALS } from './embedded/s3';
import { startEmbeddedS3Process, type RunningS3Process } from './embedded/s3-process';
import type { Logger } from './logger';
import { createMetrics } from './observability/metrics';
import { createOpsApp } from './observability/ops-app';
import { createS3Client } from './storage/s3-client';
import { startWorkerRuntime, type RunningWorker } from './worker/runner';
import { CRONTAB, createTaskList } from '../tasks';

/**
 * Starts the whole service in order: the embedded servers it needs, migrations, demo data, then
 * the worker and the HTTP API as ROLE says. stop() takes it down in the reverse order.
 */

export interface RunningService {
  context: ServiceContext;
  /** Set when the API runs. */
  baseUrl: string | undefined;
  /** The demo admin's API key, when demo data is in use and the key is known. */
  demoApiKey: string | undefined;
  stop(): Promise<void>;
}

/** A start-up failure the operator can fix: printed as one line, without a stack trace. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** The service's worker: the worker runtime with the tasks of tasks/ and their crontab. */
export function startWorker(context: ServiceContext): Promise<RunningWorker> {
  return startWorkerRuntime(context, { createTaskList, crontab: CRONTAB });
}

export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const stack: StopStack = [];
  const stopAll = async () => {
    for (const stop of stack.reverse().splice(0)) {
      await stop().catch((error: unknown) => logger.error({ err: error }, 'error while stopping'));
    }
  };
  try {
    return await start(config, logger, stack, stopAll);
  } catch (error) {
    await stopAll();
    throw error;
  }
}

type StopStack = Array<() => Promise<void>>;

async function start(config: Config, logger: Logger, stack: StopStack, stopAll: () => Promise<void>): Promise<RunningService> {
  const embeddedPostgres = config.databaseUrl === undefined;
  if (embeddedPostgres || config.embeddedS3) await assertWritable(config.dataDir);
  const databaseUrl = config.databaseUrl ?? (await startPostgres(config, logger, stack));
  const s3Config = config.embeddedS3 ? await startS3(config, logger, stack) : { ...config.s3 };
  await migrateDatabase(databaseUrl, logger);
  const context = createContext({ ...config, s3: s3Config }, databaseUrl, logger, stack);
  const demoApiKey = config.demo ? await seedDemo(context) : undefined;
  if (config.role !== 'api') await startServiceWorker(context, stack);
  const baseUrl = await startHttpServer(context, stack);
  if (baseUrl !== undefined && (embeddedPostgres || config.demo)) {
    await writeDevFile(config.dataDir, { base_url: baseUrl, api_key: demoApiKey ?? null, database_url: databaseUrl });
  }
  return { context, baseUrl, demoApiKey, stop: stopAll };
}

/** The embedded Postgres under DATA_DIR/postgres; returns its URL. */
async function startPostgres(config: Config, logger: Logger, stack: StopStack): Promise<string> {
  const dataDir = path.join(config.dataDir, 'postgres');
  const postgres: RunningPostgres = await startEmbeddedPostgres({ dataDir }).catch((error: unknown) => {
    throw new StartupError(error instanceof Error ? error.message : String(error));
  });
  stack.push(() => postgres.stop());
  logger.info({ port: postgres.port, dataDir }, 'embedded Postgres started');
  return postgres.url;
}

/** The embedded S3 server under DATA_DIR/s3, in a child process; returns the S3 configuration that reaches it. */
async function startS3(config: Config, logger: Logger, stack: StopStack): Promise<Config['s3']> {
  const s3: RunningS3Process = await startEmbeddedS3Process({ directory: path.join(config.dataDir, 's3'), buckets: [config.s3.bucket] });
  stack.push(() => s3.stop());
  logger.info({ endpoint: s3.endpoint, bucket: config.s3.bucket, pid: s3.pid }, 'embedded S3 started');
  return { ...config.s3, endpoint: s3.endpoint, ...EMBEDDED_S3_CREDENTIALS };
}

async function migrateDatabase(databaseUrl: string, logger: Logger): Promise<void> {
  await migrate(databaseUrl).catch((error: unknown) => {
    throw new StartupError(`could not migrate the database: ${error instanceof Error ? error.message : String(error)}`);
  });
  logger.info('database migrated');
}

/** The database pool, the S3 clients and the metrics the API and the worker share. */
function createContext(config: Config, databaseUrl: string, logger: Logger, stack: StopStack): ServiceContext {
  const database = createDatabase(databaseUrl, { max: config.databasePoolSize });
  stack.push(() => database.close());
  const s3 = createS3Client(config.s3);
  stack.push(async () => s3.destroy());
  // Never sends a request: it only signs download links for the address clients use.
  const publicS3 = config.s3.publicEndpoint ? createS3Client({ ...config.s3, endpoint: config.s3.publicEndpoint }) : undefined;
  stack.push(async () => publicS3?.destroy());
  const metrics = createMetrics(database.sql);
  return { config, databaseUrl, database, s3, publicS3, logger, metrics };
}

/** Seeds the demo data; returns the demo admin's API key. */
async function seedDemo(context: ServiceContext): Promise<string> {
  const { database, config, logger } = context;
  const seed = await seedDemoData(database.sql);
  if (seed.apiKey) logger.info('demo data seeded');
  // Keys are stored hashed only: on a later start reuse the key dev.json recorded while it
  // still works, or mint a new one.
  const recorded = seed.apiKey ?? (await recordedDemoKey(database.sql, config.dataDir, seed.adminId));
  return recorded ?? (await issueApiKey(database.sql, seed.adminId, 'demo'));
}

async function startServiceWorker(context: ServiceContext, stack: StopStack): Promise<void> {
  const worker: RunningWorker = await startWorker(context);
  stack.push(() => worker.stop());
  context.workerHealth = worker.health;
  context.logger.info({ concurrency: context.config.workerConcurrency }, 'worker started');
}

/** The API, or for ROLE=worker only the health and metrics routes; returns the API's base URL. */
async function startHttpServer(context: ServiceContext, stack: StopStack): Promise<string | undefined> {
  const { config, logger } = context;
  if (config.role === 'worker') {
    // No API, but the same /healthz, /readyz and /metrics on PORT for health checks and scrapes.
    const server = await listen(createAdaptorServer({ fetch: createOpsApp(context).fetch }) as Server, config);
    stack.push(() => closeServer(server));
    logger.info({ url: serverUrl(server, config) }, 'health and metrics server listening');
    return undefined;
  }
  const exportWaits = new ExportWaits({ connectionString: context.databaseUrl, logger });
  const server = await listen(createAdaptorServer({ fetch: createApp({ ...context, exportWaits }).fetch }) as Server, config);
  stack.push(async () => {
    // Requests waiting for an export (?wait=N) answer now rather than hold the close for up to a minute.
    await exportWaits.stop();
    await closeServer(server);
  });
  const baseUrl = serverUrl(server, config);
  logger.info({ baseUrl }, 'API listening');
  return baseUrl;
}

function serverUrl(server: Server, config: Config): string {
  const { port } = server.address() as AddressInfo;
  return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
}

async function recordedDemoKey(sql: Sql, dataDir: string, adminId: string): Promise<string | undefined> {
  const recorded = (await readDevFile(dataDir))?.api_key;
  if (!recorded) return undefined;
  return (await apiKeyIsActive(sql, adminId, hashApiKey(recorded))) ? recorded : undefined;
}

async function assertWritable(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    await fs.access(dir, fs.constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new StartupError(`DATA_DIR ${dir} cannot be written (${code}): set DATA_DIR to a writable directory`);
  }
}

function listen(server: Server, config: Config): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new StartupError(`PORT ${config.port} is already in use on ${config.host}: stop what uses it or set PORT`));
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(new StartupError(`HOST ${config.host} is not an address of this machine: set HOST`));
      } else if (error.code === 'EACCES') {
        reject(new StartupError(`PORT ${config.port} needs privileges this process does not have: set PORT above 1023`));
      } else reject(error);
    });
    server.listen(config.port, config.host, () => resolve(server));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Idle keep-alive sockets would hold close() open; requests under way still finish.
    server.closeIdleConnections();
  });
}
