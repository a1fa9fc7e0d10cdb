import { Logger as GraphileLogger, run, type Runner } from 'graphile-worker';
import pg from 'pg';
import { createTaskList } from '../../tasks';
import type { ServiceContext } from '../context';

export interface RunningWorker {
  runner: Runner;
  pool: pg.Pool;
  stop(): Promise<void>;
}

/** Starts the graphile-worker pool that runs exports; the process's signals are handled by the service. */
export async function startWorker(context: ServiceContext): Promise<RunningWorker> {
  const { config, logger } = context;
  const pool = new pg.Pool({
    connectionString: context.databaseUrl,
    // Each running export holds one connection for its COPY, plus graphile-worker's own use.
    max: config.workerConcurrency * 2 + 4,
    application_name: 'analytics-export-worker',
  });
  // A connection that dies while idle (or mid-query, e.g. terminated by an operator) must not
  // crash the process: the query that used it fails and the pool replaces it.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle worker database connection failed'));
  pool.on('connect', (client) => client.on('error', (error) => logger.warn({ err: error }, 'worker database connection failed')));
  const runner = await run({
    pgPool: pool,
    concurrency: config.workerConcurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    taskList: createTaskList(context),
    crontab: '',
    logger: graphileLogger(logger),
  });
  return {
    runner,
    pool,
    async stop() {
      await runner.stop();
      await pool.end();
    },
  };
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
