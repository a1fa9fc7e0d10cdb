import type { MiddlewareHandler } from 'hono';
import { bearerKey, findCaller } from '../../auth/callers';
import type { Sql } from '../../db/client';
import type { ApiEnv } from '../../http/env';
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
