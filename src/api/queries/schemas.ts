import * as v from 'valibot';
import { QUERY_AGGREGATIONS as AGGREGATIONS, QUERY_INTERVALS as INTERVALS } from '../../db/schema';
import { pageQuery } from '../pagination';
import {
  datetime,
  EARLIEST_DATETIME,
  LATEST_DATETIME,
  MAX_DEVICES,
  MAX_SCOPES,
  MAX_SPACES,
  MAX_TAGS,
  name,
  notes,
  scopeFields,
  tagList,
  tags,
  text,
  uuidList,
} from '../validation';

/**
 * The Analytics Query resource (docs/api.md): the common fields plus a structured definition,
 * never raw SQL. Rules that need more than one field (end after start, aggregation with the
 * interval) or the database (metric catalogue, visible devices, time zones) are checked by the
 * handlers after these schemas.
 */

export const MAX_METRICS = 20;

const fields = {
  name: v.pipe(name(), v.description('Required, 1 to 100 characters.')),
  notes: notes(),
  tags: v.pipe(tags(), v.description(`At most ${MAX_TAGS} tags, each 1 to 50 characters.`)),
  customer_scopes: v.pipe(scopeFields.customer_scopes, v.description(`At most ${MAX_SCOPES} customer ids.`)),
  partner_scopes: v.pipe(scopeFields.partner_scopes, v.description(`At most ${MAX_SCOPES} partner ids.`)),
  metrics: v.pipe(
    v.array(v.pipe(text(), v.nonEmpty('A metric may not be blank.')), 'Expected a list of items.'),
    v.minLength(1, 'Name at least one metric.'),
    v.maxLength(MAX_METRICS, `Ensure this field has no more than ${MAX_METRICS} elements.`),
    v.description('1 to 20 names from the metric catalogue.'),
  ),
  devices: v.pipe(
    v.optional(uuidList(MAX_DEVICES), []),
    v.description(`At most ${MAX_DEVICES} device ids, each visible to the caller; none = every device the creator can see.`),
  ),
  spaces: v.pipe(
    v.optional(uuidList(MAX_SPACES), []),
    v.description(`At most ${MAX_SPACES} space ids (each includes its descendants), each visible to the caller.`),
  ),
  start: v.pipe(datetime(), v.description(`ISO 8601 with a time zone, from ${EARLIEST_DATETIME} to ${LATEST_DATETIME}.`)),
  end: v.pipe(datetime(), v.description(`ISO 8601 with a time zone, from ${EARLIEST_DATETIME} to ${LATEST_DATETIME}; after start.`)),
  interval: v.pipe(
    v.optional(v.picklist(INTERVALS, `Select a valid choice: one of ${INTERVALS.join(', ')}.`), 'raw'),
    v.description('raw (default) or a bucket size.'),
  ),
  aggregation: v.pipe(
    v.optional(v.nullable(v.picklist(AGGREGATIONS, `Select a valid choice: one of ${AGGREGATIONS.join(', ')}.`))),
    v.description('Required unless interval is raw; must be null or absent when raw.'),
  ),
  timezone: v.pipe(v.optional(text(), 'UTC'), v.description('IANA time zone name for day buckets (default UTC).')),
};

/** POST and PUT: the whole definition. */
export const QueryBody = v.object(fields);

/** PATCH: any subset, with no defaults filled in, so that what is absent stays as stored. */
export const QueryPatchBody = v.object({
  name: v.optional(fields.name),
  notes: v.optional(text()),
  tags: v.optional(tagList()),
  ...scopeFields,
  metrics: v.optional(fields.metrics),
  devices: v.optional(uuidList(MAX_DEVICES)),
  spaces: v.optional(uuidList(MAX_SPACES)),
  start: v.optional(fields.start),
  end: v.optional(fields.end),
  interval: v.optional(v.picklist(INTERVALS, `Select a valid choice: one of ${INTERVALS.join(', ')}.`)),
  aggregation: fields.aggregation,
  timezone: v.optional(text()),
});
export type QueryPatchInput = v.InferOutput<typeof QueryPatchBody>;

/** The list's query string as the handler parses it; ./openapi.ts describes its parameters to clients. */
export const ListQueriesQuery = v.object({
  ...pageQuery,
  tags: v.optional(text()),
  name__contains: v.optional(text()),
});

const uuidString = v.pipe(v.string(), v.uuid());
const timestamp = v.pipe(v.string(), v.isoTimestamp());

export const QueryResource = v.object({
  id: uuidString,
  created: timestamp,
  modified: timestamp,
  created_by: uuidString,
  name: v.string(),
  notes: v.string(),
  tags: v.array(v.string()),
  customer_scopes: v.array(uuidString),
  partner_scopes: v.array(uuidString),
  metrics: v.array(v.string()),
  devices: v.array(uuidString),
  spaces: v.array(uuidString),
  start: timestamp,
  end: timestamp,
  interval: v.picklist(INTERVALS),
  aggregation: v.nullable(v.picklist(AGGREGATIONS)),
  timezone: v.string(),
});
export type QueryResourceBody = v.InferOutput<typeof QueryResource>;
