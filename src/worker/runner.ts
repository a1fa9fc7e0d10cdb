import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Logger as GraphileLogger, run, type Runner } from 'graphile-worker';
import pg from 'pg';
import { CRONTAB, createTaskList } from '../../tasks';
import type { ServiceContext } from '../context';
import { startCancelListener } from './cancel-listener';
import { copySessionOptions } from './copy-to-object';
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
    const { rows } = await pool.query<{ version: number }>(`SELECT current_setting('server_version_num')::int AS version`);
    const copyOptions = copySessionOptions(config.export.statementTimeoutMs, rows[0]!.version);
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
