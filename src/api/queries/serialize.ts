import type { QueryResourceBody } from './schemas';
import type { QueryRow } from './store';

/** The Analytics Query resource: every field, the definition after the common ones. */
export function queryResource(row: QueryRow): QueryResourceBody {
  return {
    id: row.id,
    created: row.created,
    modified: row.modified,
    created_by: row.created_by,
    name: row.name,
    notes: row.notes,
    tags: row.tags,
    customer_scopes: row.customer_scopes,
    partner_scopes: row.partner_scopes,
    metrics: row.metrics,
    devices: row.devices,
    spaces: row.spaces,
    start: row.start,
    end: row.end,
    interval: row.interval as QueryResourceBody['interval'],
    aggregation: row.aggregation as QueryResourceBody['aggregation'],
    timezone: row.timezone,
  };
}
