import type { Queryable } from '../client';

/** The statements on webhook_secrets: a user's signing secret, stored encrypted (src/auth/webhook-secrets.ts). */

/** Stores the user's secret, replacing the one they had. */
export async function upsertWebhookSecret(sql: Queryable, userId: string, encryptedSecret: string): Promise<void> {
  await sql`
    INSERT INTO webhook_secrets (user_id, encrypted_secret) VALUES (${userId}, ${encryptedSecret})
    ON CONFLICT (user_id) DO UPDATE SET encrypted_secret = EXCLUDED.encrypted_secret`;
}

/** The user's encrypted secret, if they have one. */
export async function findWebhookSecret(sql: Queryable, userId: string): Promise<string | undefined> {
  const [row] = await sql<{ encrypted_secret: string }[]>`SELECT encrypted_secret FROM webhook_secrets WHERE user_id = ${userId}`;
  return row?.encrypted_secret;
}
