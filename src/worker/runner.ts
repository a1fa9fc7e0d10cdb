import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Logger as GraphileLogger, run, type Runner } from 'graphile-worker';
import pg from 'pg';
import { CRONTAB, createTaskList } from '../../tasks';
import type { ServiceContext } from '../context';
import { startCancelListener } from './cancel-listener';
import { startRescuer } from './rescuer';
import { RunningExports } from './running-exports';

export interface RunningWorker {
  runner: Runner;
  pool: pg.Pool;
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
  const pool = new pg.Pool({
    connectionString: context.databaseUrl,
    // Each running export holds one connection for its COPY and briefly another for its
    // heartbeat, plus graphile-worker's own use.
    max: config.workerConcurrency * 2 + 4,
    application_name: 'analytics-export-worker',
  });
  // A connection that dies while idle (or mid-query, e.g. terminated by an operator) must not
  // crash the process: the query that used it fails and the pool replaces it.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle worker database connection failed'));
  pool.on('connect', (client) => client.on('error', (error) => logger.warn({ err: error }, 'worker database connection failed')));

  const running = new RunningExports();
  const stops: Array<() => Promise<void>> = [() => pool.end()];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch((error: unknown) => logger.error({ err: error }, 'error while stopping the worker'));
  };
  try {
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
      taskList: createTaskList({ context, pool, workerId, running }),
      crontab: CRONTAB,
      logger: graphileLogger(logger),
    });
    stops.push(() => runner.stop());
    return { runner, pool, workerId, running, stop: stopAll };
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
    else if (level === 'info') child.info(fields, message);
    else child.debug(fields, message);
  });
}
