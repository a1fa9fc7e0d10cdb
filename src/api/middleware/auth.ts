import type { MiddlewareHandler } from 'hono';
import { hashApiKey } from '../../auth/api-keys';
import type { Caller } from '../../auth/scopes';
import { isDatabaseUnavailable, type Sql } from '../../db/client';
import { findKeyOwner } from '../../db/statements/api-keys';
import type { ApiEnv } from '../env';
import { ApiError } from '../errors';

/**
 * API keys: `Authorization: Bearer <key>` (or `Token <key>`, as the platform's clients send it).
 * No key or an unknown or revoked one is 401. A key's last use is recorded at most once a minute.
 */

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="api"' };

export function authenticate(sql: Sql): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (!header) throw new ApiError(401, { detail: 'Authentication credentials were not provided.' }, CHALLENGE);
    const key = bearerKey(header);
    if (!key) throw new ApiError(401, { detail: 'Invalid token header. Use "Bearer <key>".' }, CHALLENGE);
    const caller = await findCaller(sql, key);
    if (!caller) throw new ApiError(401, { detail: 'Invalid token.' }, CHALLENGE);
    c.set('caller', caller);
    await next();
  };
}

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
