import { Hono } from 'hono';
import { rotateWebhookSecret, webhookSecretKey } from '../../auth/webhook-secrets';
import type { ServiceContext } from '../../context';
import type { ApiEnv } from '../../http/env';

/**
 * POST /analytics/webhook-secret/ (extension): creates the caller's webhook signing secret, or
 * replaces it, and shows it this once. Deliveries from then on are signed with the new one.
 */
export function webhookSecretRoutes(context: ServiceContext): Hono<ApiEnv> {
  const { config } = context;
  let key: Promise<Buffer> | undefined;
  return new Hono<ApiEnv>({ strict: false }).post('/analytics/webhook-secret', async (c) => {
    // Read (or made) once; tried again on the next request if that failed.
    key ??= webhookSecretKey(config.webhooks.secretKey, config.dataDir).catch((error: unknown) => {
      key = undefined;
      throw error;
    });
    const caller = c.get('caller');
    const secret = await rotateWebhookSecret(context.database.sql, await key, caller.id);
    c.header('Cache-Control', 'no-store');
    return c.json({ id: caller.id, secret }, 201);
  });
}
