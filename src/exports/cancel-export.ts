import type { Queryable } from '../db/client';
import type { ExportStatus } from './status';

/**
 * Cancelling is cancel_export() (drizzle/0001): a queued export fails at once, a running one is
 * asked to stop (its worker fails it within a second), a finished one is left as it is. The API's
 * DELETE and cancel and the CLI's `exports cancel` all call it through here.
 */
export async function cancelExport(sql: Queryable, id: string): Promise<ExportStatus | null> {
  const [row] = await sql<{ status: ExportStatus | null }[]>`SELECT cancel_export(${id}) AS status`;
  return row!.status;
}
