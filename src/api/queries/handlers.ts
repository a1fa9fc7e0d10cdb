import type { Context } from 'hono';
import { checkScopes, defaultScopes, distinctIds, type Caller } from '../../auth/scopes';
import type { ServiceContext } from '../../context';
import type { Queryable } from '../../db/client';
import * as store from '../../db/statements/queries';
import type { ApiEnv } from '../../http/env';
import { conflict, invalidFields, type FieldErrors } from '../errors';
import { readJsonObject } from '../middleware/body';
import { linkHeader, listFilter } from '../pagination';
import { parseOr400 } from '../validation';
import { ListQueriesQuery, QueryBody, QueryPatchBody, type QueryPatchInput } from './schemas';
import { queryResource } from './serialize';
import { reachableOr403, visibleOr404 } from '../visible';

/** Each handler parses the request, checks it, runs the statement and serialises. */

type C = Context<ApiEnv>;

export function queryHandlers(context: ServiceContext) {
  const { sql } = context.database;
  return {
    create: (c: C) => create(sql, c),
    list: (c: C) => list(sql, c),
    retrieve: (c: C) => retrieve(sql, c),
    replace: (c: C) => replace(sql, c),
    patch: (c: C) => patch(sql, c),
    remove: (c: C) => remove(sql, c),
  };
}

const visibleQuery = (sql: Queryable, c: C) => visibleOr404(c, (callerId, id) => store.findVisibleQuery(sql, callerId, id));

/**
 * Checks a whole definition (the rules across fields and against the database) or throws the
 * 400. On an update, `previous` is the stored query: devices and spaces it already had (perhaps
 * given by an admin) are kept without question; those the caller adds must be theirs. Scopes
 * are all checked, old and new: after a change every one must still be within the caller's reach.
 */
async function validated(sql: Queryable, caller: Caller, values: store.QueryValues, previous?: store.QueryRow): Promise<store.QueryValues> {
  const errors: FieldErrors = {};
  if (Date.parse(values.end) <= Date.parse(values.start)) errors.end = ['Must be after start.'];
  if (values.interval === 'raw' && values.aggregation !== null) {
    errors.aggregation = ['Must be null or absent when interval is raw.'];
  }
  if (values.interval !== 'raw' && values.aggregation === null) {
    errors.aggregation = ['This field is required when interval is not raw.'];
  }
  const added = (ids: string[], before: string[] | undefined) => ids.filter((id) => !before?.includes(id));
  const refs = await store.checkReferences(sql, caller.id, {
    metrics: values.metrics,
    devices: added(values.devices, previous?.devices),
    spaces: added(values.spaces, previous?.spaces),
    timezone: values.timezone,
  });
  if (refs.unknown_metrics.length > 0) errors.metrics = refs.unknown_metrics.map((m) => `Unknown metric "${m}".`);
  if (refs.unknown_devices.length > 0) errors.devices = refs.unknown_devices.map((id) => `Invalid pk "${id}" - object does not exist.`);
  if (refs.unknown_spaces.length > 0) errors.spaces = refs.unknown_spaces.map((id) => `Invalid pk "${id}" - object does not exist.`);
  if (!refs.timezone_known) errors.timezone = [`Unknown time zone "${values.timezone}". Use an IANA name such as Europe/Berlin.`];
  Object.assign(errors, await checkScopes(sql, caller, { customerScopes: values.customerScopes, partnerScopes: values.partnerScopes }));
  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  return values;
}

/** PUT and PATCH: what the body gives replaces what is stored; the rest stays. */
async function update(sql: Queryable, c: C, input: QueryPatchInput) {
  const caller = c.get('caller');
  const row = await visibleQuery(sql, c);
  await reachableOr403(c, sql, row, 'change');
  const interval = input.interval ?? row.interval;
  // Switching to raw drops the stored aggregation unless the body names one (which is then refused).
  const aggregation = input.aggregation !== undefined ? input.aggregation : input.interval === 'raw' ? null : row.aggregation;
  const values = await validated(
    sql,
    caller,
    {
      name: input.name ?? row.name,
      notes: input.notes ?? row.notes,
      tags: input.tags ?? row.tags,
      customerScopes: distinctIds(input.customer_scopes ?? row.customer_scopes),
      partnerScopes: distinctIds(input.partner_scopes ?? row.partner_scopes),
      metrics: unique(input.metrics ?? row.metrics),
      devices: distinctIds(input.devices ?? row.devices),
      spaces: distinctIds(input.spaces ?? row.spaces),
      start: input.start ?? row.start,
      end: input.end ?? row.end,
      interval,
      aggregation,
      timezone: input.timezone ?? row.timezone,
    },
    row,
  );
  await store.updateQuery(sql, row.id, values);
  return c.json(queryResource((await store.findVisibleQuery(sql, caller.id, row.id))!));
}

/** POST /analytics/queries/ */
async function create(sql: Queryable, c: C) {
  const caller = c.get('caller');
  const input = parseOr400(QueryBody, await readJsonObject(c));
  const defaults = defaultScopes(caller);
  const values = await validated(sql, caller, {
    name: input.name,
    notes: input.notes,
    tags: input.tags,
    customerScopes: distinctIds(input.customer_scopes ?? defaults.customerScopes),
    partnerScopes: distinctIds(input.partner_scopes ?? defaults.partnerScopes),
    metrics: unique(input.metrics),
    devices: distinctIds(input.devices),
    spaces: distinctIds(input.spaces),
    start: input.start,
    end: input.end,
    interval: input.interval,
    aggregation: input.aggregation ?? null,
    timezone: input.timezone,
  });
  const id = await store.insertQuery(sql, caller.id, values);
  return c.json(queryResource((await store.findVisibleQuery(sql, caller.id, id))!), 201);
}

/** GET /analytics/queries/ */
async function list(sql: Queryable, c: C) {
  const raw: Record<string, string> = {};
  for (const key of ['limit', 'offset', 'tags', 'name__contains']) {
    const values = c.req.queries(key);
    if (values) raw[key] = values.join(',');
  }
  const query = parseOr400(ListQueriesQuery, raw);
  const page = { limit: query.limit, offset: query.offset };
  const rows = await store.listVisibleQueries(
    sql,
    c.get('caller').id,
    { tags: listFilter(query.tags ? [query.tags] : undefined), nameContains: query.name__contains || undefined },
    page,
  );
  const link = linkHeader(c.req.url, page, rows.length > page.limit);
  if (link) c.header('Link', link);
  return c.json(rows.slice(0, page.limit).map(queryResource));
}

/** GET /analytics/queries/{id}/ */
async function retrieve(sql: Queryable, c: C) {
  return c.json(queryResource(await visibleQuery(sql, c)));
}

/** PUT /analytics/queries/{id}/: the required fields must be given; optional ones left out keep their values. */
async function replace(sql: Queryable, c: C) {
  const body = await readJsonObject(c);
  parseOr400(QueryBody, body);
  return update(sql, c, parseOr400(QueryPatchBody, body));
}

/** PATCH /analytics/queries/{id}/ */
async function patch(sql: Queryable, c: C) {
  return update(sql, c, parseOr400(QueryPatchBody, await readJsonObject(c)));
}

/** DELETE /analytics/queries/{id}/: 409 while any export refers to it. */
async function remove(sql: Queryable, c: C) {
  const row = await visibleQuery(sql, c);
  await reachableOr403(c, sql, row, 'delete');
  const referenced = conflict('This query is referenced by analytics exports; delete them first.');
  // An export created at the same moment is caught by the foreign key instead.
  const deleted = await store.deleteUnreferencedQuery(sql, row.id).catch((error: { code?: string }) => {
    if (error?.code === '23503') throw referenced;
    throw error;
  });
  if (!deleted) throw referenced;
  return c.body(null, 204);
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
