import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import type { ApiEnv } from '../http/env';
import { errorHandler } from '../http/errors';
import { logRequests } from '../http/request-log';
import type { ServiceContext } from '../context';
import { opsRoutes } from './ops-routes';

/**
 * The HTTP server of a ROLE=worker process: no API, only /healthz, /readyz and /metrics, so that
 * container health checks and Prometheus treat every process alike.
 */
export function createOpsApp(context: ServiceContext): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>({ strict: false });
  app.use(requestId());
  app.use(logRequests(context, () => app.routes));
  app.route('/', opsRoutes(context));
  app.notFound((c) => c.json({ detail: 'Not found.' }, 404));
  app.onError(errorHandler(context.logger));
  return app;
}
