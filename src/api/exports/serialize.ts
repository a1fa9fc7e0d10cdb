import { commonFields } from '../common-fields';
import { formatTimestamp } from '../../db/timestamps';
import type { ExportResourceBody } from './schemas';
import type { ExportFileRow, ExportRow } from '../../db/statements/exports';

/** bigint columns arrive as strings from postgres.js; the API speaks JSON numbers. */
const count = (value: string | number | null): number | null => (value === null ? null : Number(value));

/** The jsonb errors column, whichever way the driver hands it over. */
function errorsOf(value: unknown): ExportResourceBody['errors'] {
  if (value === null || value === undefined) return null;
  return (typeof value === 'string' ? JSON.parse(value) : value) as ExportResourceBody['errors'];
}

/** What GET of one complete export signs: its url, and each file's. */
export interface ExportDownload {
  url: string;
  expires: Date;
  files: Array<ExportFileRow & { url: string }>;
}

/**
 * The resource: the contract's fields in the contract's order (url after tags, on GET of one complete
 * export), then the scopes and the documented extensions.
 */
export function exportResource(row: ExportRow, download?: ExportDownload): ExportResourceBody {
  return {
    ...commonFields(row),
    query: row.query_id,
    status: row.status,
    errors: errorsOf(row.errors),
    number_of_rows: count(row.number_of_rows),
    total_bytes: count(row.total_bytes),
    tags: row.tags,
    ...(download && row.status === 'complete'
      ? {
          url: download.url,
          url_expires: formatTimestamp(download.expires),
          files: download.files.map((file) => ({
            url: file.url,
            number_of_rows: Number(file.number_of_rows),
            total_bytes: Number(file.total_bytes),
          })),
        }
      : {}),
    customer_scopes: row.customer_scopes,
    partner_scopes: row.partner_scopes,
    started: row.started,
    finished: row.finished,
    attempts: row.attempts,
    format: row.format,
    compression: row.compression,
    formula_guard: row.formula_guard,
    ...(row.status === 'running'
      ? { progress: { rows: count(row.rows_written) ?? 0, bytes: count(row.bytes_written) ?? 0, heartbeat: row.heartbeat_at } }
      : {}),
    notify_url: row.notify_url,
  };
}
