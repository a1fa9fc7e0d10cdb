import { commonFields } from '../common-fields';
import type { QueryResourceBody } from './schemas';
import type { QueryRow } from '../../db/statements/queries';

/** The Analytics Query resource: every field, the definition after the common ones. */
export function queryResource(row: QueryRow): QueryResourceBody {
  return {
    ...commonFields(row),
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
