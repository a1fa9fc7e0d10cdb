import type { Queryable } from '../client';
import { escapeLike } from './fragments';

/** The statements on devices. */

export interface DeviceRow {
  id: string;
  name: string;
  space_id: string | null;
  customer_id: string;
}

/**
 * A page of the devices the caller may read (devices_visible_to: the one definition the export
 * worker uses too), by name then id, limit + 1 rows (the last tells whether a next page exists).
 * `spaceId` keeps the devices placed directly in that space.
 */
export async function listVisibleDevices(
  sql: Queryable,
  callerId: string,
  filters: { spaceId?: string | undefined; nameContains?: string | undefined },
  page: { limit: number; offset: number },
): Promise<DeviceRow[]> {
  return sql<DeviceRow[]>`
    SELECT d.id, d.name, d.space_id, d.customer_id FROM devices_visible_to(${callerId}) d
     WHERE TRUE
       ${filters.spaceId ? sql`AND d.space_id = ${filters.spaceId}` : sql``}
       ${filters.nameContains ? sql`AND d.name ILIKE ${`%${escapeLike(filters.nameContains)}%`}` : sql``}
     ORDER BY d.name, d.id
     LIMIT ${page.limit + 1} OFFSET ${page.offset}`;
}
