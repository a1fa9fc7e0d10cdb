import { retryExport } from '../db/statements/exports';
import { command, CommandError, NotFoundError, uuidArgument } from './command';

/**
 * `exports retry ID`: retry_export(id) (drizzle/0006): a new export with the failed one's
 * definition; prints the new export's id. Refusals (not failed, already retried) are the
 * database's own messages; an unknown id is NotFoundError.
 */
export const exportsRetry = command({
  usage: 'exports retry ID',
  summary: 'Retry a failed export as a new export with the same definition; prints its id.',
  options: {},
  positionals: 1,
  parse: ({ positionals }) => uuidArgument(positionals[0]!, 'a failed export'),
  async run(id: string, sql) {
    try {
      return { id: await retryExport(sql, id) };
    } catch (error) {
      const code = (error as { code?: string }).code;
      // retry_export raises no_data_found (P0002) for an unknown id.
      if (code === 'P0002') throw new NotFoundError('export', id);
      if (code === 'AE002' || code === 'AE003') throw new CommandError((error as Error).message);
      throw error;
    }
  },
});
