import type { Queryable } from '../client';

/**
 * What an export runs, as JSON text, for the row of analytics_exports named `e`: the query
 * definition it took when it was created, its creator and scopes, and the catalogue checks made
 * now (metrics and time zone may have left the catalogue since). The worker's claim returns it
 * (one round trip for both), loadExportDefinition reads it on its own; parseExportDefinition
 * (src/exports/compile-query.ts) checks it.
 */
export const EXPORT_DEFINITION_SQL = `
  (e.query_definition || jsonb_build_object(
     'created_by', e.created_by,
     'customer_scopes', e.customer_scopes,
     'partner_scopes', e.partner_scopes,
     'unknown_metrics', ARRAY(SELECT m FROM jsonb_array_elements_text(
                                CASE WHEN jsonb_typeof(e.query_definition -> 'metrics') = 'array' THEN e.query_definition -> 'metrics' ELSE '[]' END) AS m
                               WHERE NOT EXISTS (SELECT 1 FROM metrics WHERE name = m)),
     'timezone_known', CASE WHEN e.query_definition ->> 'timezone' = 'UTC' THEN true
                            ELSE EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = e.query_definition ->> 'timezone') END
   ))::text`;

const LOAD_DEFINITION = `SELECT ${EXPORT_DEFINITION_SQL} AS definition FROM analytics_exports e WHERE e.id = $1`;

/** The export's definition (EXPORT_DEFINITION_SQL); undefined when there is no such export. */
export async function loadExportDefinition(sql: Queryable, exportId: string): Promise<{ definition: unknown } | undefined> {
  const [row] = await sql.unsafe(LOAD_DEFINITION, [exportId]);
  return row ? { definition: row.definition } : undefined;
}
