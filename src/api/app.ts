import { Hono } from 'hono';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { requestId } from 'hono/request-id';
import type { ServiceContext } from '../context';
import { opsRoutes } from '../observability/ops-routes';
import { discoveryRoutes } from './discovery/routes';
import { docsRoutes } from './docs';
import type { ApiEnv } from '../http/env';
import { errorHandler } from '../http/errors';
import { logRequests } from '../http/request-log';
import { AUTHENTICATED_IN_HANDLER, exportRoutes } from './exports/routes';
import { authenticate } from './middleware/auth';
import { limitBody, settleUnreadBody } from './middleware/body';
import { useForwardedUrl } from './middleware/forwarded';
import { openApiDocument } from './openapi';
import { queryRoutes } from './queries/routes';
import { webhookSecretRoutes } from './webhook-secret/routes';

/**
 * Assembles the HTTP API: public health, readiness, metrics, OpenAPI and docs; everything under
 * /analytics needs an API key. Every request is logged once, under its request id.
 */
export function createApp(context: ServiceContext): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>({ strict: false });
  app.use(settleUnreadBody);
  app.use(requestId());
  if (context.config.trustProxy) app.use(useForwardedUrl);
  app.use(logRequests(context, () => app.routes));
  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, allowed) => {
        c.header('Allow', allowed.join(', '));
        return c.json({ detail: `Method "${c.req.method}" not allowed.` }, 405);
      },
    }),
  );
  app.use(limitBody);
  app.use('/analytics/*', authenticate(context.database.sql, { inHandler: AUTHENTICATED_IN_HANDLER }));

  app.route('/', opsRoutes(context));
  const document = openApiDocument();
  app.get('/openapi.json', (c) => c.json(document));
  app.route('/', docsRoutes());

  app.route('/', exportRoutes(context));
  app.route('/', queryRoutes(context));
  app.route('/', discoveryRoutes(context));
  app.route('/', webhookSecretRoutes(context));

  app.notFound((c) => c.json({ detail: 'Not found.' }, 404));
  app.onError(errorHandler(context.logger));
  retryReadsOnceWhenTheDatabaseWasAway(app);
  return app;
}

/**
 * A GET or HEAD answered 503 with Retry-After (the database connection failed: errorHandler) is
 * handled once more before the client sees it: after a database restart, a pooled connection can
 * fail once before the pool replaces it, and a read is safe to repeat. While the database is
 * really away, the second answer is the same 503.
 */
function retryReadsOnceWhenTheDatabaseWasAway(app: Hono<ApiEnv>): void {
  const dispatch = app.fetch;
  app.fetch = async (request, ...rest) => {
    const response = await dispatch(request, ...rest);
    if ((request.method !== 'GET' && request.method !== 'HEAD') || response.status !== 503 || !response.headers.has('retry-after'))
      return response;
    await response.body?.cancel();
    return dispatch(request, ...rest);
  };
}
