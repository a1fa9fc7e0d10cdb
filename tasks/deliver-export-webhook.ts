import type { Task } from 'graphile-worker';
import { Webhook } from 'standardwebhooks';
import * as v from 'valibot';
import { exportResource } from '../src/api/exports/serialize';
import { webhookSecretKey, webhookSecretOf } from '../src/auth/webhook-secrets';
import type { ServiceContext } from '../src/context';
import { recordWebhookDelivered, recordWebhookFailure, startWebhookAttempt } from '../src/db/statements/export-webhooks';
import { findExport } from '../src/db/statements/exports';
import { NotifyUrlRefused, type ResolvedAddress, resolveNotifyUrl } from '../src/exports/notify-url';
import { nextWebhookAttempt, postWebhook, type DeliveryResult } from '../src/worker/webhook-delivery';

/**
 * `deliver_export_webhook`: one attempt at a notification of an export's final state, added by
 * the database with that state (drizzle/0017) or by the attempt before. It follows the Standard
 * Webhooks specification: headers webhook-id (the notification's id, the same on every attempt),
 * webhook-timestamp and webhook-signature (`v1,<base64 HMAC-SHA256>` with the export creator's
 * secret, signed by the `standardwebhooks` library); body {"type", "timestamp", "data"} where
 * data is the export resource as GET shows it, without url and files (one serialiser for both). The URL's
 * host is checked again (a public address unless WEBHOOK_ALLOW_PRIVATE) and the request goes to
 * the address checked. A failure schedules the next attempt (nextWebhookAttempt) or gives up.
 */

export const DELIVER_EXPORT_WEBHOOK_TASK = 'deliver_export_webhook';

const Payload = v.object({ webhook_id: v.pipe(v.string(), v.uuid()) });

export function deliverExportWebhookTask(context: ServiceContext): Task {
  const { database, config, logger, metrics } = context;
  const { sql } = database;
  let key: Promise<Buffer> | undefined;
  return async (payload) => {
    const { webhook_id: webhookId } = v.parse(Payload, payload);
    const attempt = await startWebhookAttempt(sql, webhookId);
    if (!attempt) return;
    key ??= webhookSecretKey(config.webhooks.secretKey, config.dataDir).catch((error: unknown) => {
      key = undefined;
      throw error;
    });
    const result = await deliver(attempt.export_id, attempt.url, attempt.id, attempt.event_type).catch(
      (error: unknown): DeliveryResult => ({ ok: false, statusCode: null, error: error instanceof Error ? error.message : String(error) }),
    );
    const log = { webhook_id: attempt.id, export_id: attempt.export_id, attempt: attempt.attempts };
    if (result.ok) {
      await recordWebhookDelivered(sql, attempt.id, result.statusCode);
      metrics.recordWebhookAttempt('delivered');
      logger.info({ ...log, status_code: result.statusCode }, 'export webhook delivered');
      return;
    }
    const retryAt = nextWebhookAttempt(attempt.attempts, new Date(attempt.created), new Date(), config.webhooks.retryDelayMs);
    await recordWebhookFailure(sql, attempt.id, { statusCode: result.statusCode, error: result.error, retryAt });
    metrics.recordWebhookAttempt(retryAt ? 'failed' : 'gave_up');
    logger.warn({ ...log, status_code: result.statusCode, error: result.error, retry_at: retryAt }, 'export webhook attempt failed');
  };

  async function deliver(exportId: string, notifyUrl: string, webhookId: string, type: string): Promise<DeliveryResult> {
    const row = await findExport(sql, exportId);
    if (!row) return { ok: false, statusCode: null, error: 'the export no longer exists' };
    const secret = await webhookSecretOf(sql, await key!, row.created_by);
    if (!secret) return { ok: false, statusCode: null, error: 'the export’s creator has no webhook signing secret' };
    const url = new URL(notifyUrl);
    let address: ResolvedAddress | undefined;
    try {
      [address] = await resolveNotifyUrl(url, config.webhooks.allowPrivate);
    } catch (error) {
      if (error instanceof NotifyUrlRefused) return { ok: false, statusCode: null, error: error.message };
      throw error;
    }
    const body = JSON.stringify({ type, timestamp: row.finished, data: exportResource(row) });
    // The header's timestamp is the one signed: whole seconds, as the specification has it.
    const signedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const signature = new Webhook(secret).sign(webhookId, signedAt, body);
    return postWebhook({
      url,
      address: address!,
      body,
      headers: { 'webhook-id': webhookId, 'webhook-timestamp': String(signedAt.getTime() / 1000), 'webhook-signature': signature },
    });
  }
}
