import { Hono } from 'hono';
import type { ServiceContext } from '../../context';
import type { ApiEnv } from '../../http/env';
import { queryHandlers } from './handlers';

/** Analytics Query CRUD at /analytics/queries/ (with or without the trailing slash). */
export function queryRoutes(context: ServiceContext): Hono<ApiEnv> {
  const handlers = queryHandlers(context);
  return new Hono<ApiEnv>({ strict: false })
    .post('/analytics/queries', handlers.create)
    .get('/analytics/queries', handlers.list)
    .get('/analytics/queries/:id', handlers.retrieve)
    .put('/analytics/queries/:id', handlers.replace)
    .patch('/analytics/queries/:id', handlers.patch)
    .delete('/analytics/queries/:id', handlers.remove);
}
