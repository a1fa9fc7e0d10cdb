import type { TaskList } from 'graphile-worker';
import { ABORT_STALE_UPLOADS_TASK, abortStaleUploadsTask } from './abort-stale-uploads';
import type { WorkerResources } from '../src/worker/resources';
import { ANALYTICS_EXPORT_TASK, createAnalyticsExportTask } from './analytics-export';
import { ANALYTICS_EXPORT_DISCARD_SLICES_TASK, createAnalyticsExportDiscardSlicesTask } from './analytics-export-discard-slices';
import { ANALYTICS_EXPORT_FINISH_TASK, createAnalyticsExportFinishTask } from './analytics-export-finish';
import { ANALYTICS_EXPORT_SLICE_TASK, createAnalyticsExportSliceTask } from './analytics-export-slice';
import { DELIVER_EXPORT_WEBHOOK_TASK, deliverExportWebhookTask } from './deliver-export-webhook';
import { EXPIRE_EXPORTS_TASK, expireExportsTask } from './expire-exports';
import { SWEEP_ORPHANED_OBJECTS_TASK, sweepOrphanedObjectsTask } from './sweep-orphaned-objects';

/** graphile-worker tasks by identifier; each task is one file in this folder. */
export function createTaskList(worker: WorkerResources): TaskList {
  return {
    [ANALYTICS_EXPORT_TASK]: createAnalyticsExportTask(worker),
    [ANALYTICS_EXPORT_SLICE_TASK]: createAnalyticsExportSliceTask(worker),
    [ANALYTICS_EXPORT_FINISH_TASK]: createAnalyticsExportFinishTask(worker),
    [ANALYTICS_EXPORT_DISCARD_SLICES_TASK]: createAnalyticsExportDiscardSlicesTask(worker),
    [EXPIRE_EXPORTS_TASK]: expireExportsTask(worker.context),
    [ABORT_STALE_UPLOADS_TASK]: abortStaleUploadsTask(worker.context),
    [SWEEP_ORPHANED_OBJECTS_TASK]: sweepOrphanedObjectsTask(worker.context),
    [DELIVER_EXPORT_WEBHOOK_TASK]: deliverExportWebhookTask(worker.context),
  };
}

/**
 * Maintenance on graphile-worker's crontab: hourly, at different minutes. However many worker
 * processes share the database, graphile-worker schedules each tick once (known_crontabs), and a
 * failed run is retried a few times, not 25.
 */
export const CRONTAB = [
  `7 * * * * ${EXPIRE_EXPORTS_TASK} ?max=3`,
  `37 * * * * ${ABORT_STALE_UPLOADS_TASK} ?max=3`,
  `52 * * * * ${SWEEP_ORPHANED_OBJECTS_TASK} ?max=3`,
].join('\n');
