import type { Context } from 'hono';
import * as v from 'valibot';

/**
 * Lists: a JSON array body, `?limit` (default 100, max 1000) and `?offset`, and a `Link` header
 * (RFC 8288) with rel="next" and rel="prev" pointing at the neighbouring pages, filters kept.
 */

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
export const MAX_OFFSET = 999_999_999;

/** A whole number as the query string spells it; pageParameters below describes it to clients. */
const wholeNumber = (min: number, max: number, fallback: number) =>
  v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,9}$/, `A whole number from ${min} to ${max} is required.`),
      v.transform(Number),
      v.minValue(min, `Ensure this value is at least ${min}.`),
      v.maxValue(max, `Ensure this value is at most ${max}.`),
    ),
    String(fallback),
  );

export const pageQuery = {
  limit: wholeNumber(1, MAX_LIMIT, DEFAULT_LIMIT),
  offset: wholeNumber(0, MAX_OFFSET, 0),
};

/** ?limit and ?offset as OpenAPI parameters: integers, as a client sends them. */
export const pageParameters = [
  {
    name: 'limit',
    in: 'query',
    required: false,
    description: `Page size, 1 to ${MAX_LIMIT}.`,
    schema: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT },
  },
  {
    name: 'offset',
    in: 'query',
    required: false,
    description: 'How many items to skip.',
    schema: { type: 'integer', minimum: 0, maximum: MAX_OFFSET, default: 0 },
  },
];

/** The named query-string parameters, each one's values (a parameter may repeat) joined with commas. */
export function readListQuery(c: Context, names: readonly string[]): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const name of names) {
    const values = c.req.queries(name);
    if (values) raw[name] = values.join(',');
  }
  return raw;
}

export interface Page {
  limit: number;
  offset: number;
}

/**
 * The Link header for a page, given whether a row beyond it exists (lists fetch limit + 1 rows).
 * Undefined when there is neither a next nor a previous page.
 */
export function linkHeader(requestUrl: string, page: Page, hasNext: boolean): string | undefined {
  const link = (offset: number, rel: string) => {
    const url = new URL(requestUrl);
    url.searchParams.set('limit', String(page.limit));
    url.searchParams.set('offset', String(offset));
    return `<${url.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (hasNext) links.push(link(page.offset + page.limit, 'next'));
  if (page.offset > 0) links.push(link(Math.max(0, page.offset - page.limit), 'prev'));
  return links.length > 0 ? links.join(', ') : undefined;
}

/** A filter given as `?f=a,b` or `?f=a&f=b`: the values, blanks dropped. */
export function listFilter(values: string[] | undefined): string[] | undefined {
  const items = (values ?? [])
    .flatMap((value) => value.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return items.length > 0 ? items : undefined;
}
