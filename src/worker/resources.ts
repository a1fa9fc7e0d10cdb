import type pg from 'pg';
import type { ServiceContext } from '../context';
import type { RunningExports } from './running-exports';

/** What a worker process gives its tasks: the service context, its pools, its name and what it runs. */
export interface WorkerResources {
  context: ServiceContext;
  pool: pg.Pool;
  /**
   * The export's reads, on EXPORT_DATABASE_URL (default: the service's database): its COPY and
   * anything else that reads the data for it (a planner estimate). Sessions set up with
   * copySessionOptions (read-only, as the reader role); one connection per running export.
   * Everything that writes (state, queue, progress) goes through `pool`, on the primary.
   */
  copyPool: pg.Pool;
  workerId: string;
  running: RunningExports;
}
