import type { Task } from 'graphile-worker';
import * as v from 'valibot';
import { runExport } from '../src/worker/export-job';
import type { WorkerResources } from '../src/worker/resources';

/**
 * `analytics_export`: runs one export (src/worker/export-job.ts). The job is only a wake-up call
 * added by the database's trigger; the guarded claim decides whether there is anything to do. The
 * task does not throw for an export's own failure: the outcome is written to the export, and
 * graphile-worker's job is done either way.
 */

export const ANALYTICS_EXPORT_TASK = 'analytics_export';

const Payload = v.object({ export_id: v.pipe(v.string(), v.uuid()) });

export function createAnalyticsExportTask(worker: WorkerResources): Task {
  return async (payload, helpers) => {
    const { export_id: exportId } = v.parse(Payload, payload);
    await runExport(worker, exportId, helpers.abortSignal);
  };
}
