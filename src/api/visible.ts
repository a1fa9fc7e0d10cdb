import type { Context } from 'hono';
import type { ApiEnv } from './env';
import { notFound } from './errors';
import { isUuid } from './validation';

/**
 * The object the path's `:id` names, if the caller may see it; otherwise 404, whether it does not
 * exist, is not theirs or the id is not even a uuid (the answer does not tell them apart).
 */
export async function visibleOr404<T>(c: Context<ApiEnv>, find: (callerId: string, id: string) => Promise<T | undefined>): Promise<T> {
  const id = c.req.param('id') ?? '';
  if (!isUuid(id)) throw notFound();
  const row = await find(c.get('caller').id, id);
  if (!row) throw notFound();
  return row;
}
