import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/client';

/**
 * API keys: 256 random bits, shown to their owner once. Only a SHA-256 of the key is stored:
 * with that much entropy a fast hash is safe, and it lets a request find its key by index.
 */

const KEY_PREFIX = 'aex_';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, prefix: key.slice(0, 12), hash: hashApiKey(key) };
}

/** Mints a key for a user and returns it in clear: the only time it is ever seen. */
export async function issueApiKey(sql: Queryable, userId: string, name = ''): Promise<string> {
  const { key, prefix, hash } = generateApiKey();
  await sql`INSERT INTO api_keys (user_id, prefix, key_hash, name) VALUES (${userId}, ${prefix}, ${hash}, ${name})`;
  return key;
}

/** Revokes every key of a user that still works; returns how many were revoked. */
export async function revokeApiKeys(sql: Queryable, userId: string): Promise<number> {
  const revoked = await sql`UPDATE api_keys SET revoked = now() WHERE user_id = ${userId} AND revoked IS NULL`;
  return revoked.count;
}
