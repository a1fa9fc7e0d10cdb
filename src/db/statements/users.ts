import type { Queryable } from '../client';
import type { AccountType } from '../schema';
import { isoTimestamp } from './fragments';

/** The statements on users. */

export type { AccountType };

/** The user with this email (compared case-insensitively), if any. */
export async function findUserByEmail(sql: Queryable, email: string): Promise<{ id: string } | undefined> {
  const [row] = await sql<{ id: string }[]>`SELECT id FROM users WHERE lower(email) = lower(${email})`;
  return row;
}

export async function insertUser(
  sql: Queryable,
  user: { email: string; accountType: AccountType; partnerId?: string | null; customerId?: string | null },
): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO users (email, account_type, partner_id, customer_id)
    VALUES (${user.email}, ${user.accountType}, ${user.partnerId ?? null}, ${user.customerId ?? null}) RETURNING id`;
  return row!.id;
}

/** Locks the user's row until the transaction ends; false when there is no such user. */
export async function lockUser(tx: Queryable, userId: string): Promise<boolean> {
  const [row] = await tx`SELECT 1 FROM users WHERE id = ${userId} FOR UPDATE`;
  return row !== undefined;
}

/** Every user, oldest first, with when any of their keys was last used (timestamps as the API prints them); never a key or its hash. */
export async function listUsers(sql: Queryable) {
  const rows = await sql`
    SELECT u.id, u.email, u.account_type, u.partner_id AS partner, u.customer_id AS customer, ${isoTimestamp(sql, 'u.created')} AS created,
           ${isoTimestamp(sql, '(SELECT max(k.last_used) FROM api_keys k WHERE k.user_id = u.id)')} AS last_used
      FROM users u
     ORDER BY u.created, u.id`;
  return [...rows];
}
