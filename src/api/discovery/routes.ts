import { Hono } from 'hono';
import type { ServiceContext } from '../../context';
import type { ApiEnv } from '../../http/env';
import { discoveryHandlers } from './handlers';

/** What a client can query, read-only: /analytics/metrics/, /analytics/devices/, /analytics/spaces/ (slash optional). */
export function discoveryRoutes(context: ServiceContext): Hono<ApiEnv> {
  const handlers = discoveryHandlers(context);
  return new Hono<ApiEnv>({ strict: false })
    .get('/analytics/metrics', handlers.metrics)
    .get('/analytics/devices', handlers.devices)
    .get('/analytics/spaces', handlers.spaces);
}
