import type { TaskList } from 'graphile-worker';
import { ANALYTICS_EXPORT_TASK, createAnalyticsExportTask, type ExportWorker } from './analytics-export';

/** graphile-worker tasks by identifier; each task is one file in this folder. */
export function createTaskList(worker: ExportWorker): TaskList {
  return {
    [ANALYTICS_EXPORT_TASK]: createAnalyticsExportTask(worker),
  };
}
