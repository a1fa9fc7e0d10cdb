import type pg from 'pg';
import type { ServiceContext } from '../context';
import type { RunningExports } from './running-exports';

/** What a worker process gives its tasks: the service context, its pools, its name and what it runs. */
export interface WorkerResources {
  context: ServiceContext;
  pool: pg.Pool;
  /** The COPY connections (copySessionOptions): one per running export. */
  copyPool: pg.Pool;
  workerId: string;
  running: RunningExports;
}
