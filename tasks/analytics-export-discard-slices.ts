import type { Task } from 'graphile-worker';
import * as v from 'valibot';
import { discardFailedSliceFiles } from '../src/worker/discard-slice-files';
import type { WorkerResources } from '../src/worker/resources';

/**
 * `analytics_export_discard_slices`: deletes the files of the complete slices of a sliced export
 * that failed (src/worker/discard-slice-files.ts); added by the database when the export fails.
 * A file that cannot be deleted throws, so graphile-worker tries again.
 */

export const ANALYTICS_EXPORT_DISCARD_SLICES_TASK = 'analytics_export_discard_slices';

const Payload = v.object({ export_id: v.pipe(v.string(), v.uuid()) });

export function createAnalyticsExportDiscardSlicesTask(worker: WorkerResources): Task {
  return async (payload) => {
    await discardFailedSliceFiles(worker, v.parse(Payload, payload).export_id);
  };
}
