import type { Queryable } from '../client';

/** The statements on the metric catalogue. */

export interface MetricRow {
  name: string;
  unit: string;
  description: string;
}

/** A page of the catalogue, by name (limit + 1 rows: the last tells whether a next page exists). */
export async function listMetrics(sql: Queryable, page: { limit: number; offset: number }): Promise<MetricRow[]> {
  return sql<MetricRow[]>`
    SELECT m.name, m.unit, m.description FROM metrics m
     ORDER BY m.name
     LIMIT ${page.limit + 1} OFFSET ${page.offset}`;
}
