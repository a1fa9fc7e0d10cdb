import * as v from 'valibot';
import { pageQuery } from '../pagination';
import { isUuid, text } from '../validation';

/**
 * What a client can query: the metric catalogue, and the devices and spaces the caller may see.
 * The list queries as parsed from the query string; the resources as the API shows them.
 */

/** A uuid filter; blank means absent (as the exports' `query` filter). */
const uuidFilter = v.optional(
  v.pipe(
    text(),
    v.trim(),
    v.check((s) => s === '' || isUuid(s), 'Must be a valid UUID.'),
  ),
);

/** The value of `?parent=` that asks for the spaces without a parent. */
export const ROOT_PARENT = 'null';

export const ListMetricsQuery = v.object({ ...pageQuery });

export const ListDevicesQuery = v.object({
  ...pageQuery,
  space: uuidFilter,
  name__contains: v.optional(text()),
});

export const ListSpacesQuery = v.object({
  ...pageQuery,
  parent: v.optional(
    v.pipe(
      text(),
      v.trim(),
      v.check((s) => s === '' || s === ROOT_PARENT || isUuid(s), `Must be a valid UUID, or ${ROOT_PARENT} for spaces without a parent.`),
    ),
  ),
});

const uuidString = v.pipe(v.string(), v.uuid());

export const MetricResource = v.object({
  name: v.pipe(v.string(), v.description('What a query names in `metrics`.')),
  unit: v.pipe(v.string(), v.description('The unit of its values, e.g. W; empty for counts and flags.')),
  description: v.string(),
});

export const DeviceResource = v.object({
  id: uuidString,
  name: v.string(),
  space: v.pipe(v.nullable(uuidString), v.description('The space it is placed in; null when it is placed in none.')),
  customer: v.pipe(uuidString, v.description('The customer it belongs to.')),
});

export const SpaceResource = v.object({
  id: uuidString,
  name: v.string(),
  parent: v.pipe(v.nullable(uuidString), v.description('The space it is part of; null for a root space (a building).')),
  customer: v.pipe(uuidString, v.description('The customer it belongs to.')),
});
