import type { Task } from 'graphile-worker';
import * as v from 'valibot';
import type { WorkerResources } from '../src/worker/resources';
import { runSlice } from '../src/worker/slice-job';

/**
 * `analytics_export_slice`: runs one slice of a sliced export (src/worker/slice-job.ts). Like
 * `analytics_export`, the job is a wake-up call added by the database; the slice's own failure is
 * written to its row, not thrown.
 */

export const ANALYTICS_EXPORT_SLICE_TASK = 'analytics_export_slice';

const Payload = v.object({ export_id: v.pipe(v.string(), v.uuid()), slice_number: v.pipe(v.number(), v.integer(), v.minValue(1)) });

export function createAnalyticsExportSliceTask(worker: WorkerResources): Task {
  return async (payload, helpers) => {
    const { export_id: exportId, slice_number: sliceNumber } = v.parse(Payload, payload);
    await runSlice(worker, exportId, sliceNumber, helpers.abortSignal);
  };
}
