import { cancelExportRow } from '../db/statements/exports';
import { command, NotFoundError, uuidArgument } from './command';

/**
 * `exports cancel ID`: cancel_export(id) (drizzle/0001): a queued export fails at once, a running
 * one is asked to stop (its worker fails it within a second); a finished one is left as it is.
 * Prints the status after the call.
 */
export const exportsCancel = command({
  usage: 'exports cancel ID',
  summary: 'Cancel an export: a queued one fails at once, a running one is asked to stop.',
  options: {},
  positionals: 1,
  parse: ({ positionals }) => uuidArgument(positionals[0]!, 'an export'),
  async run(id: string, sql) {
    const status = await cancelExportRow(sql, id);
    if (!status) throw new NotFoundError('export', id);
    return { id, status };
  },
});
