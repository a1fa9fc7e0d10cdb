import type { Queryable } from '../db/client';
import { loadExportDefinition } from '../db/statements/export-definition';
import { isUuid } from '../uuid';
import { compileAnalyticsSelect, ExportQueryError, parseExportDefinition, type ExportQuery } from './compile-query';

/** Reads and checks what an export runs. Throws ExportQueryError when there is no such export. */
export async function loadExportQuery(sql: Queryable, exportId: string): Promise<ExportQuery> {
  if (!isUuid(exportId)) throw new ExportQueryError(`analytics export ${JSON.stringify(exportId)} does not exist`);
  const row = await loadExportDefinition(sql, exportId);
  if (!row) throw new ExportQueryError(`analytics export ${exportId} does not exist`);
  return parseExportDefinition(row.definition);
}

/**
 * The exact SELECT an export runs (for the CLI and for operators). Throws ExportQueryError when
 * the export does not exist or its query cannot be compiled.
 */
export async function compileExportQuery(sql: Queryable, exportId: string): Promise<string> {
  return compileAnalyticsSelect(await loadExportQuery(sql, exportId));
}
