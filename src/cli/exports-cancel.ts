import { cancelExportRow } from '../db/statements/exports';
import { command, CommandError, uuidArgument } from './command';

/**
 * `exports cancel ID`: cancel_export(id) (drizzle/0001): a queued export fails at once, a running
 * one is asked to stop (its worker fails it within a second); a finished one is left as it is.
 * Prints the status after the call.
 */
export const exportsCancel = command({
  usage: 'exports cancel ID',
  options: {},
  positionals: 1,
  parse: ({ positionals }) => uuidArgument(positionals[0]!, 'an export'),
  async run(id: string, sql) {
    const status = await cancelExportRow(sql, id);
    if (!status) throw new CommandError(`no export with id ${id}`);
    return { id, status };
  },
});
