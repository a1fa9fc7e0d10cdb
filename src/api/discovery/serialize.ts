import type * as v from 'valibot';
import type { DeviceRow } from '../../db/statements/devices';
import type { MetricRow } from '../../db/statements/metrics';
import type { SpaceRow } from '../../db/statements/spaces';
import type { DeviceResource, MetricResource, SpaceResource } from './schemas';

/** The discovery resources: their references named as the other resources name theirs (no `_id`). */

export function metricResource(row: MetricRow): v.InferOutput<typeof MetricResource> {
  return { name: row.name, unit: row.unit, description: row.description };
}

export function deviceResource(row: DeviceRow): v.InferOutput<typeof DeviceResource> {
  return { id: row.id, name: row.name, space: row.space_id, customer: row.customer_id };
}

export function spaceResource(row: SpaceRow): v.InferOutput<typeof SpaceResource> {
  return { id: row.id, name: row.name, parent: row.parent_id, customer: row.customer_id };
}
