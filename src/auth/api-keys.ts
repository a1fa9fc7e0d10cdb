import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/client';
import { insertApiKey } from '../db/statements/api-keys';

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
  await insertApiKey(sql, { userId, prefix, hash, name });
  return key;
}
