import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isDatabaseUnavailable } from '../db/client';
import type { Logger } from '../logger';
import type { ApiEnv } from './env';

/**
 * Error responses in the platform's style (Django REST Framework): 400 `{"field": ["message"]}`
 * for field problems, `{"detail": "..."}` for everything else. Every error body is JSON. The
 * handler is shared by the API and the ops server of a ROLE=worker process.
 */

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.detail === 'string' ? body.detail : JSON.stringify(body));
    this.name = 'ApiError';
  }
}

/** Seconds a client is asked to wait when the database is away (a restart takes a few). */
export const DATABASE_RETRY_AFTER_S = 2;

/**
 * app.onError: known errors become their response; the database being away is 503 with
 * Retry-After (nothing was changed: the statement did not commit); anything else is a logged 500.
 */
export function errorHandler(logger: Logger) {
  return (error: Error, c: Context<ApiEnv>) => {
    if (error instanceof ApiError) {
      for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
      return c.json(error.body, error.status);
    }
    if (error instanceof HTTPException) {
      return c.json({ detail: error.message || 'Request failed.' }, error.status);
    }
    const requestId = c.get('requestId');
    if (isDatabaseUnavailable(error)) {
      logger.warn({ err: error, request_id: requestId, method: c.req.method, path: c.req.path }, 'database unavailable');
      c.header('Retry-After', String(DATABASE_RETRY_AFTER_S));
      return c.json({ detail: 'The database is unavailable for the moment; try again shortly.', request_id: requestId }, 503);
    }
    logger.error({ err: error, request_id: requestId, method: c.req.method, path: c.req.path }, 'unhandled error in request');
    return c.json({ detail: 'Internal server error.', request_id: requestId }, 500);
  };
}
