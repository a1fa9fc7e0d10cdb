import type { Context } from 'hono';
import { callerReaches } from '../auth/scopes';
import type { Queryable } from '../db/client';
import type { ApiEnv } from '../http/env';
import { forbidden, notFound } from './errors';
import { isUuid } from './validation';

/**
 * The object the path's `:id` names, if the caller may see it; otherwise 404, whether it does not
 * exist, is not theirs or the id is not even a uuid (the answer does not tell them apart).
 */
export async function visibleOr404<T>(c: Context<ApiEnv>, find: (callerId: string, id: string) => Promise<T | undefined>): Promise<T> {
  const id = pathId(c);
  if (id === null) throw notFound();
  const row = await find(c.get('caller').id, id);
  if (!row) throw notFound();
  return row;
}

/** The path's `:id` if it is a uuid, else null: no object has it. */
export function pathId(c: Context<ApiEnv>): string | null {
  const id = c.req.param('id') ?? '';
  return isUuid(id) ? id : null;
}

/**
 * Changing, deleting or cancelling an object needs reach over every scope on it: a caller who
 * sees it through one of its scopes but does not reach them all gets 403 (they know it exists).
 */
export async function reachableOr403(
  c: Context<ApiEnv>,
  sql: Queryable,
  row: { customer_scopes: string[]; partner_scopes: string[] },
  action: string,
): Promise<void> {
  if (!(await callerReaches(sql, c.get('caller'), { customerScopes: row.customer_scopes, partnerScopes: row.partner_scopes }))) {
    throw forbidden(
      `You can see this object but not ${action} it: it is shared with customers or partners beyond your own (customer_scopes, partner_scopes).`,
    );
  }
}
