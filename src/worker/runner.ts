import type { S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Logger as GraphileLogger, run, type Runner } from 'graphile-worker';
import pg from 'pg';
import { CRONTAB, createTaskList } from '../../tasks';
import type { ServiceContext } from '../context';
import type { Logger } from '../logger';
import { checkStorage, type CheckResult } from '../observability/readiness';
import { createS3Client } from '../storage/s3-client';
import { startCancelListener } from './cancel-listener';
import { copySessionOptions, EXPORT_READER_ROLE } from './copy-to-object';
import { repeatEvery } from './repeat';
import { startRescuer } from './rescuer';
import { RunningExports } from './running-exports';

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

/**
 * Starts the worker side of the service in one process: graphile-worker's runner with the export
 * task, the LISTEN connection for cancellations and the rescuer of exports whose worker died.
 * The process's signals are handled by the service.
 */
export async function startWorker(context: ServiceContext): Promise<RunningWorker> {
  const { config, logger } = context;
  const workerId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const newPool = (max: number, applicationName: string, options?: string) => {
    const created = new pg.Pool({ connectionString: context.databaseUrl, max, application_name: applicationName, ...(options ? { options } : {}) });
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
    for (const stop of stops.splice(0).reverse()) await stop().catch((error: unknown) => logger.error({ err: error }, 'error while stopping the worker'));
  };
  try {
    const { rows } = await pool.query<{ version: number; reader: boolean }>(READER_ROLE_CHECK, [EXPORT_READER_ROLE, EXPORT_TABLES]);
    const { version, reader } = rows[0]!;
    if (!reader) {
      logger.warn(
        { role: EXPORT_READER_ROLE },
        'COPY sessions run as the connecting user, kept read-only only by default_transaction_read_only: the role for exports is missing, lacks its grants, or this user may not SET ROLE to it (see docs/operations.md)',
      );
    }
    const copyOptions = copySessionOptions(config.export.statementTimeoutMs, version, reader ? EXPORT_READER_ROLE : undefined);
    const copyPool = newPool(config.workerConcurrency, 'analytics-export-copy', copyOptions);
    stops.push(() => copyPool.end());
    const listener = await startCancelListener({ connectionString: context.databaseUrl, running, logger });
    stops.push(() => listener.stop());
    const rescuer = startRescuer({
      pool,
      staleAfterMs: config.export.heartbeatTimeoutMs,
      intervalMs: Math.max(500, Math.floor(config.export.heartbeatTimeoutMs / 3)),
      logger,
    });
    stops.push(() => rescuer.stop());
    // The worker's S3 requests ride out an outage of about a minute and a half each (S3_MAX_ATTEMPTS)
    // before an attempt fails; the API's client stays quick.
    const patientS3 = createS3Client(config.s3, { maxAttempts: config.s3.maxAttempts });
    stops.push(async () => patientS3.destroy());
    const workerContext: ServiceContext = { ...context, s3: patientS3 };
    const startRunner = () => run({
      pgPool: pool,
      concurrency: config.workerConcurrency,
      noHandleSignals: true,
      pollInterval: 1000,
      // Running exports get this long to finish after stop(); then helpers.abortSignal fires and
      // the task stops and re-queues them.
      gracefulShutdownAbortTimeout: config.shutdownGraceMs,
      taskList: createTaskList({ context: workerContext, pool, copyPool, workerId, running }),
      crontab: CRONTAB,
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

/**
 * The server's version, and whether COPY sessions can run as the reader role: it exists, this
 * user may SET ROLE to it (Postgres 16 tells SET apart from membership), and in this database it
 * may read every table an export reads (a role made by another database's migration has no
 * grants here until this one's migration ran).
 */
const READER_ROLE_CHECK = `
  SELECT current_setting('server_version_num')::int AS version,
         CASE WHEN to_regrole($1) IS NULL THEN false
              ELSE pg_has_role($1::name, CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END)
                   AND (SELECT bool_and(CASE WHEN to_regclass(t) IS NULL THEN false ELSE has_table_privilege($1::name, t::regclass, 'SELECT') END)
                          FROM unnest($2::text[]) AS t)
         END AS reader`;

/** Session settings of the control pool: statements end after the heartbeat timeout, lock waits after half of it. */
function controlSessionOptions(heartbeatTimeoutMs: number): string {
  return `-c statement_timeout=${Math.floor(heartbeatTimeoutMs)} -c lock_timeout=${Math.floor(heartbeatTimeoutMs / 2)}`;
}

const SUPERVISOR_INTERVAL_MS = 1000;
/** While the runner takes jobs, storage is checked this often; while it does not, every tick. */
const STORAGE_CHECK_INTERVAL_MS = 5000;
/** Consecutive failed storage checks before the runner stops taking jobs (one is a blip). */
const STORAGE_FAILURES_TO_PAUSE = 2;

/**
 * Keeps graphile-worker's runner taking jobs while it can, and only then:
 *   - the runner stops itself when one of its own writes fails (completing or failing a job
 *     while Postgres restarts): it is started again, once the database takes it;
 *   - a worker whose storage check (HeadBucket) fails twice in a row stops its runner (running
 *     exports get SHUTDOWN_GRACE_S, then go back to the queue for another worker) and starts it
 *     again when the check passes: a worker that cannot reach storage takes no export.
 * The first start happens before this resolves, and its failure is thrown (start-up fails).
 */
async function superviseRunner(options: {
  start: () => Promise<Runner>;
  checkStorage: () => Promise<CheckResult>;
  logger: Logger;
}): Promise<{ health(): CheckResult; stop(): Promise<void> }> {
  const { logger } = options;
  let runner: Runner | undefined;
  // Why the runner is not taking jobs (undefined while it is).
  let problem: string | undefined = 'the job runner is starting';
  let since = Date.now();
  let storageFailures = 0;
  let lastStorageCheck = 0;
  let stopping = false;

  const notTakingJobs = (why: string) => {
    if (problem === undefined) since = Date.now();
    problem = why;
  };
  const startRunner = async () => {
    const started = await options.start();
    runner = started;
    problem = undefined;
    // Resolves (or rejects) when the runner stops: by our stop(), or by itself on an error.
    void started.promise
      .catch(() => undefined)
      .then(() => {
        if (runner !== started) return;
        runner = undefined;
        notTakingJobs('the job runner stopped on a database error; restarting it');
        logger.error('the job runner stopped on its own (see the graphile-worker lines before); restarting it');
      });
  };
  const stopRunner = async () => {
    const stopped = runner;
    runner = undefined;
    await stopped?.stop().catch((error: unknown) => logger.warn({ err: error }, 'error while stopping the job runner'));
  };

  const supervise = async () => {
    if (stopping) return;
    if (runner === undefined || Date.now() - lastStorageCheck >= STORAGE_CHECK_INTERVAL_MS) {
      lastStorageCheck = Date.now();
      const storage = await options.checkStorage();
      if (storage.status === 'ok') storageFailures = 0;
      else storageFailures++;
      if (storage.status === 'failed' && (runner === undefined || storageFailures >= STORAGE_FAILURES_TO_PAUSE)) {
        if (runner) logger.warn({ error: storage.error }, 'storage unreachable: the worker stops taking jobs until it answers');
        notTakingJobs(`storage unreachable (${storage.error}): not taking jobs until it answers`);
        await stopRunner();
        return;
      }
    }
    if (runner !== undefined || stopping) return;
    try {
      await startRunner();
      logger.info({ after_ms: Date.now() - since }, 'the job runner takes jobs again');
    } catch (error) {
      notTakingJobs(`the job runner could not start: ${error instanceof Error ? error.message : String(error)}`);
      logger.warn({ err: error }, 'the job runner could not start; trying again');
    }
  };

  // First start: storage is checked, and a runner that cannot start fails the start-up.
  lastStorageCheck = Date.now();
  const storage = await options.checkStorage();
  if (storage.status === 'ok') await startRunner();
  else {
    notTakingJobs(`storage unreachable (${storage.error}): not taking jobs until it answers`);
    logger.warn({ error: storage.error }, 'storage unreachable: the worker takes no jobs until it answers');
  }
  const loop = repeatEvery(SUPERVISOR_INTERVAL_MS, supervise);

  return {
    health: () =>
      problem === undefined ? { status: 'ok', duration_ms: 0 } : { status: 'failed', duration_ms: 0, error: problem },
    async stop() {
      stopping = true;
      await loop.stop();
      await stopRunner();
    },
  };
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
