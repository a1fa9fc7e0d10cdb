import { Hono } from 'hono';
import type { ServiceContext } from '../context';

/** Assembles the HTTP API. */
export function createApp(_context: ServiceContext): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.notFound((c) => c.json({ detail: 'Not found.' }, 404));
  return app;
}
