import type { Queryable } from '../client';

/** The statements on spaces. */

export interface SpaceRow {
  id: string;
  name: string;
  parent_id: string | null;
  customer_id: string;
}

/**
 * A page of the spaces the caller may see (their customer is one the caller sees:
 * user_sees_customer, as for the devices in them), by name then id, limit + 1 rows. `parent`
 * keeps the direct children of that space, or with `{ root: true }` the spaces without a parent.
 */
export async function listVisibleSpaces(
  sql: Queryable,
  callerId: string,
  filters: { parent?: { id: string } | { root: true } | undefined },
  page: { limit: number; offset: number },
): Promise<SpaceRow[]> {
  const parent = filters.parent;
  return sql<SpaceRow[]>`
    SELECT s.id, s.name, s.parent_id, s.customer_id FROM spaces s
     WHERE user_sees_customer(${callerId}, s.customer_id)
       ${parent === undefined ? sql`` : 'root' in parent ? sql`AND s.parent_id IS NULL` : sql`AND s.parent_id = ${parent.id}`}
     ORDER BY s.name, s.id
     LIMIT ${page.limit + 1} OFFSET ${page.offset}`;
}
