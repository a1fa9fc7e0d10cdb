/**
 * An export's status, as the export domain names it. Defined once, by the database enum
 * (src/db/schema.ts, `export_status`); this module only gives the domain its own import.
 */
export { EXPORT_STATUSES, type ExportStatus } from '../db/schema';
