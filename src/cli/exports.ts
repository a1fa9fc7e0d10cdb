import { compileExportQuery, ExportQueryError } from '../exports/compile-query';
import { command, CommandError, UsageError } from './command';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `exports sql ID`: the exact SELECT the worker runs for that export (the same compiler). */
export const exportsSql = command({
  usage: 'exports sql ID',
  options: {},
  positionals: 1,
  parse({ positionals }) {
    const id = positionals[0]!.trim();
    if (!UUID.test(id)) throw new UsageError('ID must be the uuid of an export');
    return id;
  },
  async run(id: string, sql) {
    try {
      return await compileExportQuery(sql, id);
    } catch (error) {
      if (error instanceof ExportQueryError) throw new CommandError(error.message);
      throw error;
    }
  },
});
