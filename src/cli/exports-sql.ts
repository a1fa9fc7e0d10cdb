import { ExportQueryError } from '../exports/compile-query';
import { compileExportQuery } from '../exports/load-export-query';
import { command, CommandError, uuidArgument } from './command';

/** `exports sql ID`: the exact SELECT the worker runs for that export (the same compiler). */
export const exportsSql = command({
  usage: 'exports sql ID',
  options: {},
  positionals: 1,
  parse: ({ positionals }) => uuidArgument(positionals[0]!, 'an export'),
  async run(id: string, sql) {
    try {
      return await compileExportQuery(sql, id);
    } catch (error) {
      if (error instanceof ExportQueryError) throw new CommandError(error.message);
      throw error;
    }
  },
});
