import type { Queryable } from '../client';
import type { AccountType } from '../schema';

/** The statements on api_keys (only a key's hash is ever stored; src/auth/api-keys.ts makes keys). */

export async function insertApiKey(sql: Queryable, key: { userId: string; prefix: string; hash: string; name: string }): Promise<void> {
  await sql`INSERT INTO api_keys (user_id, prefix, key_hash, name) VALUES (${key.userId}, ${key.prefix}, ${key.hash}, ${key.name})`;
}

/** Revokes every key of a user that still works; returns how many were revoked. */
export async function revokeApiKeys(sql: Queryable, userId: string): Promise<number> {
  const revoked = await sql`UPDATE api_keys SET revoked = now() WHERE user_id = ${userId} AND revoked IS NULL`;
  return revoked.count;
}

export interface KeyOwner {
  id: string;
  account_type: AccountType;
  partner_id: string | null;
  customer_id: string | null;
}

/**
 * `caller`: the user an unrevoked key (by its hash) belongs to, as common table expressions for
 * a statement's WITH, so that a statement can find the caller and read for them in one round
 * trip (exports.ts, findExportForKey). The key's last use is recorded at most once a minute, by
 * the same statement.
 */
export const keyOwner = (sql: Queryable, keyHash: string) => sql`
  key AS (
    SELECT id, user_id FROM api_keys WHERE key_hash = ${keyHash} AND revoked IS NULL
  ), touched AS (
    UPDATE api_keys SET last_used = now()
     WHERE id IN (SELECT id FROM key) AND (last_used IS NULL OR last_used < now() - interval '1 minute')
  ), caller AS (
    SELECT u.id, u.account_type, u.partner_id, u.customer_id FROM key JOIN users u ON u.id = key.user_id
  )`;

/** The user an unrevoked key (by its hash) belongs to (keyOwner). Safe to repeat. */
export async function findKeyOwner(sql: Queryable, keyHash: string): Promise<KeyOwner | undefined> {
  const [row] = await sql<KeyOwner[]>`WITH ${keyOwner(sql, keyHash)} SELECT * FROM caller`;
  return row;
}

/** Whether this key (by its hash) is the user's and still works. */
export async function apiKeyIsActive(sql: Queryable, userId: string, keyHash: string): Promise<boolean> {
  const [key] = await sql`
    SELECT 1 FROM api_keys WHERE key_hash = ${keyHash} AND user_id = ${userId} AND revoked IS NULL`;
  return key !== undefined;
}
