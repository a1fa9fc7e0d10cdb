import type { TaskList } from 'graphile-worker';
import type { ServiceContext } from '../src/context';

/** graphile-worker tasks by identifier; each task is one file in this folder. */
export function createTaskList(_context: ServiceContext): TaskList {
  return {};
}
