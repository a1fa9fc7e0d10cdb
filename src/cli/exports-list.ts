import { EXPORT_STATUSES } from '../exports/status';
import { command, integerOption, UsageError } from './command';

const STATUSES: readonly string[] = EXPORT_STATUSES;

/**
 * `exports list [--status S] [--limit N]`: the newest exports from the analytics_export_jobs view
 * (docs/operations.md), as one JSON array; intervals in seconds, counts as numbers.
 */
export const exportsList = command({
  usage: `exports list [--status ${EXPORT_STATUSES.join('|')}] [--limit N (1-1000, default 100)]`,
  options: { status: { type: 'string' }, limit: { type: 'string' } },
  parse({ values }) {
    const status = values.status?.trim();
    if (status !== undefined && !STATUSES.includes(status)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')}`);
    return { status, limit: integerOption(values, 'limit', 1, 1000, 100) };
  },
  async run({ status, limit }, sql) {
    return sql`
      SELECT id, status, attempts, max_attempts, last_error, error_code, worker_id, held_since,
             extract(epoch FROM heartbeat_age)::float8 AS heartbeat_age_seconds,
             rows_written::float8 AS rows_written, bytes_written::float8 AS bytes_written,
             run_at, created, started, finished, extract(epoch FROM duration)::float8 AS duration_seconds,
             query_id, created_by, name, cancel_requested_at, retry_of
        FROM analytics_export_jobs
       WHERE ${status === undefined ? sql`true` : sql`status = ${status}`}
       ORDER BY created DESC, id DESC
       LIMIT ${limit}`.then((rows) => [...rows]);
  },
});
