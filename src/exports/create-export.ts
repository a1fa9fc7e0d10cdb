import { createHash } from 'node:crypto';
import { checkExportScopes, checkScopes, type Caller } from '../auth/scopes';
import { hasWebhookSecret } from '../auth/webhook-secrets';
import type { Queryable } from '../db/client';
import {
  findByIdempotencyKey,
  findVisibleExport,
  insertExport,
  releaseExpiredIdempotencyKey,
  type ExportRow,
  type NewExport,
} from '../db/statements/exports';
import { queryIsVisible } from '../db/statements/queries';
import { NotifyUrlRefused, resolveNotifyUrl } from './notify-url';

export type { NewExport };

/**
 * Creating an export: POST /analytics/export, and the tests' fixtures. The INSERT is one
 * statement (insertExport): the row is born queued and the database's trigger adds its job in the
 * same transaction. Around it, the Idempotency-Key protocol:
 *
 * 1. a key this user used in the last 24 hours replays that export (the same body) or is refused
 *    (another body); an older use lets go of the key;
 * 2. the request is checked (only a new one: a replay answers what was created then), its
 *    notify_url included (a public https address, and the caller has a signing secret);
 * 3. the insert; two requests with one key at once: the unique index lets one in, the other replays it.
 */

export interface CreatedExport {
  id: string;
  /** The export as created (queued), or as it is now when replayed. */
  row: ExportRow;
  /** An earlier request with the same Idempotency-Key created it. */
  replayed: boolean;
}

/** The Idempotency-Key cannot be used for this request; `message` says why. */
export class IdempotencyKeyConflict extends Error {
  override name = 'IdempotencyKeyConflict';
}

/** The request names what the caller may not use: the problems by field. */
export class InvalidExportRequest extends Error {
  override name = 'InvalidExportRequest';
  constructor(readonly fields: Record<string, string[]>) {
    super(`the export request is invalid: ${Object.keys(fields).join(', ')}`);
  }
}

/**
 * Creates an export, or replays the one created earlier with the same Idempotency-Key. With a
 * caller, the request is first checked against what the caller may see and reach
 * (InvalidExportRequest); without one (fixtures, operators) it is taken as it is.
 */
export async function createExport(
  sql: Queryable,
  input: NewExport,
  caller?: Caller,
  options: { allowPrivateNotifyUrl?: boolean } = {},
): Promise<CreatedExport> {
  const key = input.idempotencyKey;
  if (key !== undefined) {
    const replay = await replayed(sql, input, key);
    if (replay) return replay;
    await releaseExpiredIdempotencyKey(sql, input.createdBy, key);
  }
  if (caller) await checkRequest(sql, caller, input, options.allowPrivateNotifyUrl ?? false);
  try {
    const row = await insertExport(sql, input);
    return { id: row.id, row, replayed: false };
  } catch (error) {
    if (key !== undefined && isUniqueViolation(error, 'analytics_exports_idempotency_key')) {
      const replay = await replayed(sql, input, key);
      if (replay) return replay;
    }
    throw error;
  }
}

/** The export made earlier with this key, if any; IdempotencyKeyConflict when it was made of another request. */
async function replayed(sql: Queryable, input: NewExport, key: string): Promise<CreatedExport | undefined> {
  const earlier = await findByIdempotencyKey(sql, input.createdBy, key);
  if (!earlier) return undefined;
  if (earlier.request_hash !== (input.requestHash ?? null)) {
    throw new IdempotencyKeyConflict('This Idempotency-Key was used with a different request body in the last 24 hours.');
  }
  const row = await findVisibleExport(sql, input.createdBy, earlier.id);
  // Only if the caller's membership changed since: say no more than that the key is taken.
  if (!row) throw new IdempotencyKeyConflict('This Idempotency-Key was already used in the last 24 hours.');
  return { id: row.id, row, replayed: true };
}

/** The query must be one the caller sees; the scopes within their reach and not empty for every reader. */
async function checkRequest(sql: Queryable, caller: Caller, input: NewExport, allowPrivateNotifyUrl: boolean): Promise<void> {
  if (!(await queryIsVisible(sql, caller.id, input.queryId))) {
    throw new InvalidExportRequest({ query: [`Invalid pk "${input.queryId}" - object does not exist.`] });
  }
  const scopes = { customerScopes: input.customerScopes, partnerScopes: input.partnerScopes };
  const scopeErrors = await checkScopes(sql, caller, scopes);
  if (Object.keys(scopeErrors).length > 0) throw new InvalidExportRequest(scopeErrors);
  const emptyForEveryone = await checkExportScopes(sql, scopes);
  if (Object.keys(emptyForEveryone).length > 0) throw new InvalidExportRequest(emptyForEveryone);
  if (input.notifyUrl !== undefined) await checkNotifyUrl(sql, caller, input.notifyUrl, allowPrivateNotifyUrl);
}

/** A notify_url must lead to a public address, and its deliveries need the creator's signing secret. */
async function checkNotifyUrl(sql: Queryable, caller: Caller, notifyUrl: string, allowPrivate: boolean): Promise<void> {
  try {
    await resolveNotifyUrl(new URL(notifyUrl), allowPrivate);
  } catch (error) {
    if (error instanceof NotifyUrlRefused) throw new InvalidExportRequest({ notify_url: [error.message] });
    throw error;
  }
  if (!(await hasWebhookSecret(sql, caller.id))) {
    throw new InvalidExportRequest({
      notify_url: ['You have no webhook signing secret yet: create one with POST /analytics/webhook-secret/ first.'],
    });
  }
}

/**
 * What an Idempotency-Key is bound to: the validated request, keys sorted, so that formatting
 * and key order do not make requests differ.
 */
export function hashRequest(input: unknown): string {
  const canonical = JSON.stringify(input, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : value,
  );
  return createHash('sha256').update(canonical).digest('hex');
}

function isUniqueViolation(error: unknown, constraint: string): boolean {
  const e = error as { code?: string; constraint_name?: string };
  return e?.code === '23505' && e.constraint_name === constraint;
}
