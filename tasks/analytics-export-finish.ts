import type { Task } from 'graphile-worker';
import * as v from 'valibot';
import { finishSlicedExport } from '../src/worker/finish-sliced-export';
import type { WorkerResources } from '../src/worker/resources';

/**
 * `analytics_export_finish`: completes a sliced export once all its slices are complete
 * (src/worker/finish-sliced-export.ts); added by the database when the last slice completes. A
 * storage fault throws, so graphile-worker tries again.
 */

export const ANALYTICS_EXPORT_FINISH_TASK = 'analytics_export_finish';

const Payload = v.object({ export_id: v.pipe(v.string(), v.uuid()) });

export function createAnalyticsExportFinishTask(worker: WorkerResources): Task {
  return async (payload) => {
    await finishSlicedExport(worker, v.parse(Payload, payload).export_id);
  };
}
