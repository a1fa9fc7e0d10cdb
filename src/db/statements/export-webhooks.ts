import type { Queryable } from '../client';
import { isoTimestamp } from './fragments';

/**
 * The statements on analytics_export_webhooks: the notifications of exports' final states and
 * how their deliveries went. The trigger of drizzle/0017 adds each one with the final status.
 */

export interface WebhookAttempt {
  id: string;
  export_id: string;
  event_type: 'analytics_export.completed' | 'analytics_export.failed';
  url: string;
  /** This attempt's number, from 1. */
  attempts: number;
  /** When the notification was added: the retry window counts from then. */
  created: string;
}

/** Counts an attempt of a notification still pending; undefined when it was delivered, given up or deleted. */
export async function startWebhookAttempt(sql: Queryable, id: string): Promise<WebhookAttempt | undefined> {
  const [row] = await sql<WebhookAttempt[]>`
    UPDATE analytics_export_webhooks w
       SET attempts = attempts + 1, last_attempt_at = now(), next_attempt_at = NULL
     WHERE id = ${id} AND delivered_at IS NULL AND gave_up_at IS NULL
    RETURNING id, export_id, event_type, url, attempts, ${isoTimestamp(sql, 'w.created')} AS created`;
  return row;
}

export async function recordWebhookDelivered(sql: Queryable, id: string, statusCode: number): Promise<void> {
  await sql`
    UPDATE analytics_export_webhooks SET delivered_at = now(), last_status_code = ${statusCode}, last_error = NULL WHERE id = ${id}`;
}

/**
 * A failed attempt: with `retryAt`, the next attempt's job is added in the same statement;
 * without, the notification is given up.
 */
export async function recordWebhookFailure(
  sql: Queryable,
  id: string,
  failure: { statusCode: number | null; error: string; retryAt: Date | null },
): Promise<void> {
  const retryAt = failure.retryAt?.toISOString() ?? null;
  await sql`
    WITH w AS (
      UPDATE analytics_export_webhooks
         SET last_status_code = ${failure.statusCode}, last_error = ${failure.error},
             next_attempt_at = ${retryAt}::timestamptz, gave_up_at = CASE WHEN ${retryAt}::timestamptz IS NULL THEN now() END
       WHERE id = ${id}
      RETURNING id, next_attempt_at)
    SELECT enqueue_export_webhook(w.id, w.next_attempt_at) FROM w WHERE w.next_attempt_at IS NOT NULL`;
}

/** Notifications neither delivered nor given up (GET /metrics). */
export async function countPendingWebhooks(sql: Queryable): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM analytics_export_webhooks WHERE delivered_at IS NULL AND gave_up_at IS NULL`;
  return row!.n;
}
