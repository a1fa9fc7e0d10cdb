import type { S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Logger as GraphileLogger, run, type TaskList } from 'graphile-worker';
import pg from 'pg';
import type { ServiceContext } from '../context';
import type { CheckResult } from '../observability/check-result';
import { checkStorage } from '../observability/readiness';
import { createS3Client } from '../storage/s3-client';
import { startCancelListener } from './cancel-listener';
import { copySessionOptions, EXPORT_READER_ROLE } from './copy-to-object';
import { requeueOrphanedExportsConfig, startOrphanedExportRequeuer } from './maintenance/requeue-orphaned-exports';
import { rescueStaleExportsConfig, startStaleExportRescuer } from './maintenance/rescue-stale-exports';
import { RunningExports } from './running-exports';
import { superviseRunner } from './supervisor';
import type { WorkerResources } from './resources';
import { readerRoleUsable } from '../db/statements/server';

export interface RunningWorker {
  /** Whether the job runner is taking jobs: `failed` with the reason while it is not (GET /readyz). */
  health(): CheckResult;
  pool: pg.Pool;
  copyPool: pg.Pool;
  /** This process's name in analytics_exports.worker_id. */
  workerId: string;
  running: RunningExports;
  /** The S3 client the worker's tasks use: the service's, with S3_MAX_ATTEMPTS tries per request. */
  s3: S3Client;
  /**
   * Stops taking jobs and lets running exports finish for up to SHUTDOWN_GRACE_S; then stops
   * them and puts them back in the queue. Resolves when nothing is left running.
   */
  stop(): Promise<void>;
}

/** What the worker's tasks are given: the service context with the worker's S3 client, and its connections. */
/** The jobs a worker runs, given by the service wiring (tasks/): the runtime knows none of them. */
export interface WorkerTasks {
  createTaskList(worker: WorkerResources): TaskList;
  /** graphile-worker's crontab text. */
  crontab: string;
}

/**
 * Starts the worker side of the service in one process: graphile-worker's runner with `tasks`,
 * the LISTEN connection for cancellations, and the maintenance every worker runs (the rescue of
 * exports whose worker died, the requeue of exports that lost their job). The process's signals
 * are handled by the service.
 */
export async function startWorkerRuntime(context: ServiceContext, tasks: WorkerTasks): Promise<RunningWorker> {
  const { config, logger } = context;
  const workerId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const newPool = (max: number, applicationName: string, options?: string, connectionString = context.databaseUrl) => {
    const created = new pg.Pool({
      connectionString,
      max,
      application_name: applicationName,
      ...(options ? { options } : {}),
    });
    // A connection that dies while idle (or mid-query, e.g. terminated by an operator) must not
    // crash the process: the query that used it fails and the pool replaces it.
    created.on('error', (error) => logger.warn({ err: error }, 'idle worker database connection failed'));
    created.on('connect', (client) => client.on('error', (error) => logger.warn({ err: error }, 'worker database connection failed')));
    return created;
  };
  // Claims, heartbeats, completions and graphile-worker's own queries; the COPYs have their own.
  // No statement of these may wait for ever (an operator's `SELECT ... FOR UPDATE` left open): a
  // heartbeat that cannot be written within its timeout fails, and the export is given up.
  const pool = newPool(config.workerConcurrency + 4, 'analytics-export-worker', controlSessionOptions(config.export.heartbeatTimeoutMs));

  const running = new RunningExports();
  const stops: Array<() => Promise<void>> = [() => pool.end()];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse())
      await stop().catch((error: unknown) => logger.error({ err: error }, 'error while stopping the worker'));
  };
  try {
    const { version, usable: reader } = await readerRoleUsable(pool, EXPORT_READER_ROLE, EXPORT_TABLES);
    if (!reader) {
      logger.warn(
        { role: EXPORT_READER_ROLE },
        'COPY sessions run as the connecting user, kept read-only only by default_transaction_read_only: the role for exports is missing, lacks its grants, or this user may not SET ROLE to it (see docs/operations.md)',
      );
    }
    const copyOptions = copySessionOptions(
      config.export.statementTimeoutMs,
      version,
      reader ? EXPORT_READER_ROLE : undefined,
      config.export.workMemMiB,
    );
    // The COPYs read from EXPORT_DATABASE_URL when it is set (a standby: the same roles, functions
    // and version as the primary, so the same session settings and visibility rules apply).
    const copyPool = newPool(
      config.workerConcurrency,
      'analytics-export-copy',
      copyOptions,
      config.export.readDatabaseUrl ?? context.databaseUrl,
    );
    stops.push(() => copyPool.end());
    const listener = await startCancelListener({ connectionString: context.databaseUrl, running, logger });
    stops.push(() => listener.stop());
    const rescuer = startStaleExportRescuer({ ...rescueStaleExportsConfig(config.export.heartbeatTimeoutMs), pool, logger });
    stops.push(() => rescuer.stop());
    const requeuer = startOrphanedExportRequeuer({ ...requeueOrphanedExportsConfig(config.export.heartbeatTimeoutMs), pool, logger });
    stops.push(() => requeuer.stop());
    // The worker's S3 requests ride out an outage of about a minute and a half each (S3_MAX_ATTEMPTS)
    // before an attempt fails; the API's client stays quick.
    const patientS3 = createS3Client(config.s3, { maxAttempts: config.s3.maxAttempts });
    stops.push(async () => patientS3.destroy());
    const workerContext: ServiceContext = { ...context, s3: patientS3 };
    const startRunner = () =>
      run({
        pgPool: pool,
        concurrency: config.workerConcurrency,
        noHandleSignals: true,
        pollInterval: 1000,
        // Running exports get this long to finish after stop(); then helpers.abortSignal fires and
        // the task stops and re-queues them.
        gracefulShutdownAbortTimeout: config.shutdownGraceMs,
        taskList: tasks.createTaskList({ context: workerContext, pool, copyPool, workerId, running }),
        crontab: tasks.crontab,
        logger: graphileLogger(logger),
        preset: {
          worker: {
            // Jobs finished in the same tick are completed in one statement. graphile-worker's
            // local queue (fetching several jobs at once) is left off: it would hold jobs locked
            // on a worker busy with long exports while another worker sits idle.
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
          },
        },
      });
    const supervisor = await superviseRunner({ start: startRunner, checkStorage: () => checkStorage(context), logger });
    stops.push(() => supervisor.stop());
    return { health: supervisor.health, pool, copyPool, workerId, running, s3: patientS3, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The tables an export's SELECT reads; the reader role must be able to read each. */
const EXPORT_TABLES = ['devices', 'device_readings', 'spaces', 'customers', 'users', 'partners', 'metrics'];

/** Session settings of the control pool: statements end after the heartbeat timeout, lock waits after half of it. */
function controlSessionOptions(heartbeatTimeoutMs: number): string {
  return `-c statement_timeout=${Math.floor(heartbeatTimeoutMs)} -c lock_timeout=${Math.floor(heartbeatTimeoutMs / 2)}`;
}

function graphileLogger(logger: ServiceContext['logger']): GraphileLogger {
  const child = logger.child({ component: 'graphile-worker' });
  return new GraphileLogger((scope) => (level, message, meta) => {
    const fields = { scope, ...meta };
    if (level === 'error') child.error(fields, message);
    else if (level === 'warning') child.warn(fields, message);
    // "Completed task ..." for every job says less than the export's own outcome line.
    else if (level === 'info' && !message.startsWith('Completed task')) child.info(fields, message);
    else child.debug(fields, message);
  });
}
