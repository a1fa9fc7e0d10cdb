import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Queryable } from '../db/client';
import { findWebhookSecret, upsertWebhookSecret } from '../db/statements/webhook-secrets';

/**
 * Webhook signing secrets: one per user, `whsec_` + base64 of 32 random bytes (the Standard
 * Webhooks form). The database holds them encrypted with AES-256-GCM under a key it never sees
 * (WEBHOOK_SECRET_KEY, or a key file under DATA_DIR), so a dump alone reveals none; the service
 * decrypts one when it signs a delivery.
 */

const SECRET_PREFIX = 'whsec_';
const SECRET_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_FILE = 'webhook-secret.key';

/** The stored secret does not decrypt with this key: the key changed since it was made. */
export class WebhookSecretUndecryptable extends Error {
  override name = 'WebhookSecretUndecryptable';
}

/**
 * The key that encrypts the secrets: the configured one, or DATA_DIR/webhook-secret.key (32 random
 * bytes, readable by its owner only), made on first use. Every process that signs or rotates
 * secrets must use the same key.
 */
export async function webhookSecretKey(configured: Buffer | undefined, dataDir: string): Promise<Buffer> {
  if (configured) return configured;
  const file = path.join(dataDir, KEY_FILE);
  try {
    return await readKeyFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await fs.mkdir(dataDir, { recursive: true });
  try {
    // 'wx': two processes starting at once make one key; the loser reads the winner's.
    await fs.writeFile(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return readKeyFile(file);
}

async function readKeyFile(file: string): Promise<Buffer> {
  const key = Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key in base64`);
  return key;
}

export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

export function encryptWebhookSecret(key: Buffer, secret: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64');
}

export function decryptWebhookSecret(key: Buffer, stored: string): string {
  const bytes = Buffer.from(stored, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
  decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new WebhookSecretUndecryptable('the webhook signing secret does not decrypt with this WEBHOOK_SECRET_KEY (or key file)');
  }
}

/** Creates or replaces the user's secret and returns it in clear: the only time it is shown. */
export async function rotateWebhookSecret(sql: Queryable, key: Buffer, userId: string): Promise<string> {
  const secret = generateWebhookSecret();
  await upsertWebhookSecret(sql, userId, encryptWebhookSecret(key, secret));
  return secret;
}

export async function hasWebhookSecret(sql: Queryable, userId: string): Promise<boolean> {
  return (await findWebhookSecret(sql, userId)) !== undefined;
}

/** The user's secret in clear, to sign with; undefined when they have none. */
export async function webhookSecretOf(sql: Queryable, key: Buffer, userId: string): Promise<string | undefined> {
  const stored = await findWebhookSecret(sql, userId);
  return stored === undefined ? undefined : decryptWebhookSecret(key, stored);
}
