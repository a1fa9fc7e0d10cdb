import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Logger as GraphileLogger, run, type Runner } from 'graphile-worker';
import pg from 'pg';
import { CRONTAB, createTaskList } from '../../tasks';
import type { ServiceContext } from '../context';
import { startCancelListener } from './cancel-listener';
import { copySessionOptions, EXPORT_READER_ROLE } from './copy-to-object';
import { startRescuer } from './rescuer';
import { RunningExports } from './running-exports';

export interface RunningWorker {
  runner: Runner;
  pool: pg.Pool;
  copyPool: pg.Pool;
  /** This process's name in analytics_exports.worker_id. */
  workerId: string;
  running: RunningExports;
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
  const pool = newPool(config.workerConcurrency + 4, 'analytics-export-worker');

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
    const runner = await run({
      pgPool: pool,
      concurrency: config.workerConcurrency,
      noHandleSignals: true,
      pollInterval: 1000,
      // Running exports get this long to finish after stop(); then helpers.abortSignal fires and
      // the task stops and re-queues them.
      gracefulShutdownAbortTimeout: config.shutdownGraceMs,
      taskList: createTaskList({ context, pool, copyPool, workerId, running }),
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
    stops.push(() => runner.stop());
    return { runner, pool, copyPool, workerId, running, stop: stopAll };
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
