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
import { migrate } from './db/migrate';
import { readDevFile, writeDevFile } from './dev-file';
import { seedDemoData } from './demo/seed';
import { startEmbeddedPostgres, type RunningPostgres } from './embedded/postgres';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3, type RunningS3 } from './embedded/s3';
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
  const stack: Array<() => Promise<void>> = [];
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

async function start(
  config: Config,
  logger: Logger,
  stack: Array<() => Promise<void>>,
  stopAll: () => Promise<void>,
): Promise<RunningService> {
  const embeddedPostgres = config.databaseUrl === undefined;
  if (embeddedPostgres || config.embeddedS3) await assertWritable(config.dataDir);

  let databaseUrl = config.databaseUrl;
  if (databaseUrl === undefined) {
    const postgres: RunningPostgres = await startEmbeddedPostgres({ dataDir: path.join(config.dataDir, 'postgres') }).catch(
      (error: unknown) => {
        throw new StartupError(error instanceof Error ? error.message : String(error));
      },
    );
    stack.push(() => postgres.stop());
    databaseUrl = postgres.url;
    logger.info({ port: postgres.port, dataDir: path.join(config.dataDir, 'postgres') }, 'embedded Postgres started');
  }

  const s3Config = { ...config.s3 };
  if (config.embeddedS3) {
    const s3: RunningS3 = await startEmbeddedS3({ directory: path.join(config.dataDir, 's3'), buckets: [config.s3.bucket] });
    stack.push(() => s3.stop());
    s3Config.endpoint = s3.endpoint;
    s3Config.accessKeyId = EMBEDDED_S3_CREDENTIALS.accessKeyId;
    s3Config.secretAccessKey = EMBEDDED_S3_CREDENTIALS.secretAccessKey;
    logger.info({ endpoint: s3.endpoint, bucket: config.s3.bucket }, 'embedded S3 started');
  }

  await migrate(databaseUrl).catch((error: unknown) => {
    throw new StartupError(`could not migrate the database: ${error instanceof Error ? error.message : String(error)}`);
  });
  logger.info('database migrated');

  const database = createDatabase(databaseUrl, { max: config.databasePoolSize });
  stack.push(() => database.close());
  const s3 = createS3Client(s3Config);
  stack.push(async () => s3.destroy());
  // Never sends a request: it only signs download links for the address clients use.
  const publicS3 = s3Config.publicEndpoint ? createS3Client({ ...s3Config, endpoint: s3Config.publicEndpoint }) : undefined;
  stack.push(async () => publicS3?.destroy());
  const metrics = createMetrics(database.sql);
  const context: ServiceContext = { config: { ...config, s3: s3Config }, databaseUrl, database, s3, publicS3, logger, metrics };

  let demoApiKey: string | undefined;
  if (config.demo) {
    const seed = await seedDemoData(database.sql);
    if (seed.apiKey) logger.info('demo data seeded');
    // Keys are stored hashed only: on a later start reuse the key dev.json recorded while it
    // still works, or mint a new one.
    demoApiKey = seed.apiKey ?? (await recordedDemoKey(database.sql, config.dataDir, seed.adminId));
    demoApiKey ??= await issueApiKey(database.sql, seed.adminId, 'demo');
  }

  let worker: RunningWorker | undefined;
  if (config.role !== 'api') {
    worker = await startWorker(context);
    stack.push(() => worker!.stop());
    context.workerHealth = worker.health;
    logger.info({ concurrency: config.workerConcurrency }, 'worker started');
  }

  let baseUrl: string | undefined;
  if (config.role === 'worker') {
    // No API, but the same /healthz, /readyz and /metrics on PORT for health checks and scrapes.
    const server = await listen(createAdaptorServer({ fetch: createOpsApp(context).fetch }) as Server, config);
    stack.push(() => closeServer(server));
    logger.info({ url: serverUrl(server, config) }, 'health and metrics server listening');
  } else {
    const server = await listen(createAdaptorServer({ fetch: createApp(context).fetch }) as Server, config);
    stack.push(() => closeServer(server));
    baseUrl = serverUrl(server, config);
    logger.info({ baseUrl }, 'API listening');
    if (embeddedPostgres || config.demo) {
      await writeDevFile(config.dataDir, { base_url: baseUrl, api_key: demoApiKey ?? null, database_url: databaseUrl });
    }
  }

  return { context, baseUrl, demoApiKey, stop: stopAll };
}

function serverUrl(server: Server, config: Config): string {
  const { port } = server.address() as AddressInfo;
  return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
}

async function recordedDemoKey(sql: Sql, dataDir: string, adminId: string): Promise<string | undefined> {
  const recorded = (await readDevFile(dataDir))?.api_key;
  if (!recorded) return undefined;
  const [key] = await sql`
    SELECT 1 FROM api_keys WHERE key_hash = ${hashApiKey(recorded)} AND user_id = ${adminId} AND revoked IS NULL`;
  return key ? recorded : undefined;
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
