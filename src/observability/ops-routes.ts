import type { IncomingMessage } from 'node:http';
import { Hono, type Context } from 'hono';
import type { ApiEnv } from '../http/env';
import { bearerKey, findCaller } from '../auth/callers';
import type { ServiceContext } from '../context';
import { checkReadiness } from './readiness';

/**
 * What every process serves for its operators and orchestrator, whatever its ROLE:
 *   GET /healthz  the process is alive (no dependency checked: a restart would not fix them);
 *   GET /readyz   the database and the bucket answer: 200, or 503 naming the failing part;
 *   GET /metrics  Prometheus text format (src/observability/metrics.ts).
 * /readyz gives each failure's message (hosts, ports, bucket names) only to a caller on the
 * loopback interface, not proxied, or with an admin's API key; others learn which part failed.
 */
export function opsRoutes(context: ServiceContext): Hono<ApiEnv> {
  const routes = new Hono<ApiEnv>();
  routes.get('/healthz', (c) => c.json({ status: 'ok' }));
  routes.get('/readyz', async (c) => {
    const { ready, checks } = await checkReadiness(context);
    if (ready) return c.json({ status: 'ready', checks });
    const failing = Object.entries(checks).filter(([, result]) => result.status === 'failed');
    if (await mayReadDetails(c, context)) {
      const detail = `not ready: ${failing.map(([name, result]) => `${name}: ${result.error}`).join('; ')}`;
      return c.json({ status: 'unavailable', detail, checks }, 503);
    }
    const publicChecks = Object.fromEntries(Object.entries(checks).map(([name, { error: _error, ...result }]) => [name, result]));
    return c.json({ status: 'unavailable', detail: `not ready: ${failing.map(([name]) => name).join(', ')}`, checks: publicChecks }, 503);
  });
  routes.get('/metrics', async (c) => {
    const { registry } = context.metrics;
    try {
      return c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType });
    } catch (error) {
      // The export gauges read the database at scrape time; without it there is no truth to report.
      context.logger.warn({ err: error }, 'metrics scrape failed');
      return c.text(`metrics unavailable: ${error instanceof Error ? error.message : String(error)}\n`, 503);
    }
  });
  return routes;
}

async function mayReadDetails(c: Context<ApiEnv>, context: ServiceContext): Promise<boolean> {
  // A request relayed by a proxy on this host arrives from the loopback too: not the operator's own.
  if (isLoopback(remoteAddress(c)) && !c.req.header('x-forwarded-for') && !c.req.header('forwarded')) return true;
  const key = bearerKey(c.req.header('authorization') ?? '');
  if (!key) return false;
  // The database may be the part that is down: then no key can be checked, and no detail is given.
  const caller = await findCaller(context.database.sql, key).catch(() => undefined);
  return caller?.accountType === 'admin';
}

function remoteAddress(c: Context<ApiEnv>): string | undefined {
  // Set by @hono/node-server; absent when the app is called without a server (app.request).
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress;
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address === '::1' || /^(?:::ffff:)?127\./.test(address));
}
