import { retryExport } from '../db/statements/exports';
import { command, CommandError, uuidArgument } from './command';

/**
 * `exports retry ID`: retry_export(id) (drizzle/0006): a new export with the failed one's
 * definition; prints the new export's id. Refusals (not failed, already retried, unknown id)
 * are the database's own messages.
 */
export const exportsRetry = command({
  usage: 'exports retry ID',
  options: {},
  positionals: 1,
  parse: ({ positionals }) => uuidArgument(positionals[0]!, 'a failed export'),
  async run(id: string, sql) {
    try {
      return { id: await retryExport(sql, id) };
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'AE002' || code === 'AE003' || code === 'P0002') throw new CommandError((error as Error).message);
      throw error;
    }
  },
});
