import { EXPORT_STATUSES } from '../exports/status';
import { listExportJobs } from '../db/statements/exports';
import { command, integerOption, UsageError } from './command';

const STATUSES: readonly string[] = EXPORT_STATUSES;

/**
 * `exports list [--status S] [--limit N]`: the newest exports from the analytics_export_jobs view
 * (docs/operations.md), as one JSON array; intervals in seconds, counts as numbers.
 */
export const exportsList = command({
  usage: `exports list [--status ${EXPORT_STATUSES.join('|')}] [--limit N (1-1000, default 100)]`,
  summary: 'List the newest exports from the analytics_export_jobs view.',
  options: { status: { type: 'string' }, limit: { type: 'string' } },
  parse({ values }) {
    const status = values.status?.trim();
    if (status !== undefined && !STATUSES.includes(status)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')}`);
    return { status, limit: integerOption(values, 'limit', 1, 1000, 100) };
  },
  run: ({ status, limit }, sql) => listExportJobs(sql, { status, limit }),
});
