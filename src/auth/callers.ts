import { isDatabaseUnavailable, type Sql } from '../db/client';
import { findKeyOwner, type KeyOwner } from '../db/statements/api-keys';
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
  const found = await findCallerWith(key, async (keyHash) => {
    const owner = await findKeyOwner(sql, keyHash);
    return owner && { owner, found: undefined };
  });
  return found?.caller;
}

/**
 * The user a valid, unrevoked key belongs to and what `read` found for them, where `read` is one
 * statement that checks the key (by its hash) as findKeyOwner does and reads in the same round
 * trip; undefined when the key is not valid. Retried once as findCaller is: `read` must be safe
 * to repeat.
 */
export async function findCallerWith<T>(
  key: string,
  read: (keyHash: string) => Promise<{ owner: KeyOwner; found: T } | undefined>,
): Promise<{ caller: Caller; found: T } | undefined> {
  const keyHash = hashApiKey(key);
  let result: { owner: KeyOwner; found: T } | undefined;
  try {
    result = await read(keyHash);
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    result = await read(keyHash);
  }
  if (!result) return undefined;
  const { owner, found } = result;
  return {
    caller: { id: owner.id, accountType: owner.account_type, partnerId: owner.partner_id, customerId: owner.customer_id },
    found,
  };
}
