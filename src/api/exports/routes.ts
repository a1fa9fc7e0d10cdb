import { Hono } from 'hono';
import type { ServiceContext } from '../../context';
import type { ApiEnv } from '../../http/env';
import type { RouteName } from '../middleware/auth';
import { exportHandlers } from './handlers';

const ONE_EXPORT = '/analytics/exports/:id';

/** GET of one export checks the caller's key in its own statement (handlers.ts, retrieve). */
export const AUTHENTICATED_IN_HANDLER: RouteName[] = [{ method: 'GET', path: ONE_EXPORT }];

/**
 * The Analytics Export paths, exactly as the contract writes them (with or without the trailing
 * slash: the app is not strict). PUT and PATCH are answered 405 by the app's method check.
 */
export function exportRoutes(context: ServiceContext): Hono<ApiEnv> {
  const handlers = exportHandlers(context);
  return new Hono<ApiEnv>({ strict: false })
    .post('/analytics/export', handlers.create)
    .get('/analytics/exports', handlers.list)
    .get(ONE_EXPORT, handlers.retrieve)
    .delete(ONE_EXPORT, handlers.remove)
    .post(`${ONE_EXPORT}/cancel`, handlers.cancel);
}
