import { Hono } from 'hono';
import type { ServiceContext } from '../../context';
import type { ApiEnv } from '../../http/env';
import { exportHandlers } from './handlers';

/**
 * The Analytics Export paths, exactly as the contract writes them (with or without the trailing
 * slash: the app is not strict). PUT and PATCH are answered 405 by the app's method check.
 */
export function exportRoutes(context: ServiceContext): Hono<ApiEnv> {
  const handlers = exportHandlers(context);
  return new Hono<ApiEnv>({ strict: false })
    .post('/analytics/export', handlers.create)
    .get('/analytics/exports', handlers.list)
    .get('/analytics/exports/:id', handlers.retrieve)
    .delete('/analytics/exports/:id', handlers.remove)
    .post('/analytics/exports/:id/cancel', handlers.cancel);
}
