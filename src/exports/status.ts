import type { ExportStatus } from '../db/schema';

/**
 * An export's status, as the export domain names it. Defined once, by the database enum
 * (src/db/schema.ts, `export_status`); this module only gives the domain its own import.
 */
export { EXPORT_STATUSES, type ExportStatus } from '../db/schema';

/** complete and failed are final: nothing moves an export out of them. */
export function isFinal(status: ExportStatus): boolean {
  return status === 'complete' || status === 'failed';
}
