import { isDatabaseUnavailable, type Sql } from '../db/client';
import { findKeyOwner } from '../db/statements/api-keys';
import { hashApiKey } from './api-keys';
import type { Caller } from './scopes';

/** Who calls with an API key: the API's authentication and the operators' /readyz details both ask. */

/** The key of an `Authorization: Bearer <key>` (or `Token <key>`) header. */
export function bearerKey(header: string): string | undefined {
  return /^(?:Bearer|Token)\s+(\S+)\s*$/i.exec(header)?.[1];
}

/**
 * The user a valid, unrevoked key belongs to. Tried twice when the database connection fails:
 * after a database restart, a pooled connection may still fail once before the pool replaces it,
 * and this statement is safe to repeat.
 */
export async function findCaller(sql: Sql, key: string): Promise<Caller | undefined> {
  try {
    return await lookUpCaller(sql, key);
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    return lookUpCaller(sql, key);
  }
}

async function lookUpCaller(sql: Sql, key: string): Promise<Caller | undefined> {
  const row = await findKeyOwner(sql, hashApiKey(key));
  if (!row) return undefined;
  return { id: row.id, accountType: row.account_type, partnerId: row.partner_id, customerId: row.customer_id };
}
