import { Hono } from 'hono';
import type { ApiEnv } from '../api/env';
import type { ServiceContext } from '../context';
import { checkReadiness } from './readiness';

/**
 * What every process serves for its operators and orchestrator, whatever its ROLE:
 *   GET /healthz  the process is alive (no dependency checked: a restart would not fix them);
 *   GET /readyz   the database and the bucket answer: 200, or 503 naming the failing part;
 *   GET /metrics  Prometheus text format (src/observability/metrics.ts).
 */
export function opsRoutes(context: ServiceContext): Hono<ApiEnv> {
  const routes = new Hono<ApiEnv>();
  routes.get('/healthz', (c) => c.json({ status: 'ok' }));
  routes.get('/readyz', async (c) => {
    const { ready, checks } = await checkReadiness(context);
    if (ready) return c.json({ status: 'ready', checks });
    const failing = Object.entries(checks)
      .filter(([, result]) => result.status === 'failed')
      .map(([name, result]) => `${name}: ${result.error}`);
    return c.json({ status: 'unavailable', detail: `not ready: ${failing.join('; ')}`, checks }, 503);
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
