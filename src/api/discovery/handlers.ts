import type { Context } from 'hono';
import type { ServiceContext } from '../../context';
import { listVisibleDevices } from '../../db/statements/devices';
import { listMetrics } from '../../db/statements/metrics';
import { listVisibleSpaces } from '../../db/statements/spaces';
import type { ApiEnv } from '../../http/env';
import { linkHeader, type Page, readListQuery } from '../pagination';
import { parseOr400 } from '../validation';
import { ListDevicesQuery, ListMetricsQuery, ListSpacesQuery, ROOT_PARENT } from './schemas';
import { deviceResource, metricResource, spaceResource } from './serialize';

/** Lists a client reads to write a query: each parses its filters, runs its statement and serialises a page. */

type C = Context<ApiEnv>;

export function discoveryHandlers(context: ServiceContext) {
  const { sql } = context.database;
  return {
    /** GET /analytics/metrics/: the catalogue, the same for every caller. */
    metrics: async (c: C) => {
      const query = parseOr400(ListMetricsQuery, readListQuery(c, ['limit', 'offset']));
      return page(c, query, (await listMetrics(sql, query)).map(metricResource));
    },
    /** GET /analytics/devices/ */
    devices: async (c: C) => {
      const query = parseOr400(ListDevicesQuery, readListQuery(c, ['limit', 'offset', 'space', 'name__contains']));
      const filters = { spaceId: query.space || undefined, nameContains: query.name__contains || undefined };
      return page(c, query, (await listVisibleDevices(sql, c.get('caller').id, filters, query)).map(deviceResource));
    },
    /** GET /analytics/spaces/ */
    spaces: async (c: C) => {
      const query = parseOr400(ListSpacesQuery, readListQuery(c, ['limit', 'offset', 'parent']));
      const parent = !query.parent ? undefined : query.parent === ROOT_PARENT ? { root: true as const } : { id: query.parent };
      return page(c, query, (await listVisibleSpaces(sql, c.get('caller').id, { parent }, query)).map(spaceResource));
    },
  };
}

/** The page's items (the statements read one more, which says whether a next page exists) and its Link header. */
function page<T>(c: C, query: Page, items: T[]) {
  const link = linkHeader(c.req.url, query, items.length > query.limit);
  if (link) c.header('Link', link);
  return c.json(items.slice(0, query.limit));
}
