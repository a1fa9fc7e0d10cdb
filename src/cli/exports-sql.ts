import { ExportQueryError } from '../exports/compile-query';
import { compileExportQuery } from '../exports/load-export-query';
import { loadExportDefinition } from '../db/statements/export-definition';
import { command, CommandError, NotFoundError, uuidArgument } from './command';

/** `exports sql ID`: the exact SELECT the worker runs for that export (the same compiler). */
export const exportsSql = command({
  usage: 'exports sql ID',
  summary: 'Print the exact SELECT the worker runs for an export.',
  options: {},
  positionals: 1,
  parse: ({ positionals }) => uuidArgument(positionals[0]!, 'an export'),
  async run(id: string, sql) {
    if (!(await loadExportDefinition(sql, id))) throw new NotFoundError('export', id);
    try {
      return await compileExportQuery(sql, id);
    } catch (error) {
      if (error instanceof ExportQueryError) throw new CommandError(error.message);
      throw error;
    }
  },
});
