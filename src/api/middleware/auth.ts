import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { bearerKey, findCaller, findCallerWith } from '../../auth/callers';
import type { KeyOwner } from '../../db/statements/api-keys';
import type { Sql } from '../../db/client';
import type { ApiEnv } from '../../http/env';
import { ApiError } from '../errors';

/**
 * API keys: `Authorization: Bearer <key>` (or `Token <key>`, as the platform's clients send it).
 * No key or an unknown or revoked one is 401. A key's last use is recorded at most once a minute.
 *
 * Every request is authenticated here, before its handler, except on the routes named in
 * `inHandler`: there the handler checks the key in the statement that reads what it answers
 * (readAsCaller), one round trip to the database instead of two. GET of one export is such a
 * route: it is what clients poll (docs/performance.md, "GET of one export in one statement").
 * The header is checked here for every route alike.
 */

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="api"' };

const invalidToken = () => new ApiError(401, { detail: 'Invalid token.' }, CHALLENGE);

export interface RouteName {
  method: 'GET';
  path: string;
}

export function authenticate(sql: Sql, options: { inHandler?: RouteName[] } = {}): MiddlewareHandler<ApiEnv> {
  const inHandler = options.inHandler ?? [];
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (!header) throw new ApiError(401, { detail: 'Authentication credentials were not provided.' }, CHALLENGE);
    const key = bearerKey(header);
    if (!key) throw new ApiError(401, { detail: 'Invalid token header. Use "Bearer <key>".' }, CHALLENGE);
    // The route that will answer is the last one matched (HEAD is routed as GET).
    const answering = matchedRoutes(c).at(-1);
    if (answering && inHandler.some((route) => route.method === answering.method && route.path === answering.path)) {
      c.set('apiKey', key);
    } else {
      const caller = await findCaller(sql, key);
      if (!caller) throw invalidToken();
      c.set('caller', caller);
    }
    await next();
  };
}

/**
 * For a route the middleware left to its handler: the key checked and `read` done in one
 * statement (see findCallerWith), the caller set as the middleware sets it, 401 if the key is
 * not valid. Only what `read` found is returned.
 */
export async function readAsCaller<T>(
  c: Context<ApiEnv>,
  read: (keyHash: string) => Promise<{ owner: KeyOwner; found: T } | undefined>,
): Promise<T> {
  const key = c.get('apiKey');
  if (key === undefined) throw new Error('readAsCaller on a route the middleware authenticated: add it to inHandler');
  const result = await findCallerWith(key, read);
  if (!result) throw invalidToken();
  c.set('caller', result.caller);
  return result.found;
}
