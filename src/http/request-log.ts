import type { MiddlewareHandler } from 'hono';
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

export function logRequests(context: RequestLogContext): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const started = process.hrtime.bigint();
    await next();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = c.res.status;
    // The matched route's pattern, so the metric's labels stay few; '*' only matched middleware.
    const route = c.req.routePath.includes('*') ? '(unmatched)' : c.req.routePath;
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
