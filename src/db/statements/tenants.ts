import type { Queryable } from '../client';

/** The statements on partners and customers. */

export async function insertPartner(sql: Queryable, name: string): Promise<string> {
  const [row] = await sql<{ id: string }[]>`INSERT INTO partners (name) VALUES (${name}) RETURNING id`;
  return row!.id;
}

export async function insertCustomer(sql: Queryable, partnerId: string, name: string): Promise<string> {
  const [row] = await sql<{ id: string }[]>`INSERT INTO customers (partner_id, name) VALUES (${partnerId}, ${name}) RETURNING id`;
  return row!.id;
}

/** Whether a partner or customer with this id exists. */
export async function tenantExists(sql: Queryable, table: 'partners' | 'customers', id: string): Promise<boolean> {
  const [row] = await sql`SELECT 1 FROM ${sql(table)} WHERE id = ${id}`;
  return row !== undefined;
}
