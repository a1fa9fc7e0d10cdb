import type { MiddlewareHandler } from 'hono';
import { TrieRouter } from 'hono/router/trie-router';
import type { Logger } from '../logger';
import type { ApiEnv } from './env';

/**
 * One log line per request (request id, method, path, route, status, duration) and its metrics
 * observation. Never the headers: they carry API keys. Health checks and scrapes, which arrive
 * every few seconds, are logged at debug only.
 */

const QUIET = new Set(['/healthz', '/readyz', '/metrics']);

/** Where the lines and observations go: the service's logger and metrics (src/observability/metrics.ts). */
export interface RequestLogContext {
  logger: Logger;
  metrics: { recordRequest(method: string, route: string, status: number, seconds: number): void };
}

/** The app's routes, as Hono lists them (`app.routes`): read at the first request, once all are added. */
export type RouteList = () => ReadonlyArray<{ path: string }>;

/**
 * `app.use(logRequests(context, () => app.routes))`. The route label is the pattern of the route
 * the request's path names, whatever answered: a request refused before its handler ran (401 by
 * auth, 405 by the method check, 413 by the body limit) counts under its route like the others,
 * and only a path no route names is `(unmatched)`. The labels stay as few as the routes.
 */
export function logRequests(context: RequestLogContext, routes: RouteList): MiddlewareHandler<ApiEnv> {
  let router: TrieRouter<string> | undefined;
  const routeOf = (path: string): string => {
    if (!router) {
      router = new TrieRouter<string>();
      for (const { path: pattern } of routes()) if (!pattern.includes('*')) router.add('ALL', pattern, pattern);
    }
    // The first route added wins, as in the app's own routing.
    return router.match('ALL', path)[0][0]?.[0] ?? '(unmatched)';
  };
  return async (c, next) => {
    const started = process.hrtime.bigint();
    await next();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = c.res.status;
    // A handler that answered gives its pattern; when middleware answered ('*'), the path is looked up.
    const route = c.req.routePath.includes('*') ? routeOf(c.req.path) : c.req.routePath;
    context.metrics.recordRequest(c.req.method, route, status, seconds);
    // The path as sent (c.req.path drops a trailing slash in non-strict routing); no query string.
    const path = new URL(c.req.url).pathname;
    const line = {
      request_id: c.get('requestId'),
      method: c.req.method,
      path,
      route,
      status,
      duration_ms: Math.round(seconds * 100_000) / 100,
    };
    if (status >= 500) context.logger.warn(line, 'request');
    else if (QUIET.has(path)) context.logger.debug(line, 'request');
    else context.logger.info(line, 'request');
  };
}
