import type { Queryable } from '../client';

/** The statements on device_readings. */

/**
 * Synthetic readings for every device and metric, one every `stepSeconds` from start (inclusive)
 * to end (exclusive), in one INSERT ... SELECT: values follow daily cycles per metric with a
 * little noise. Existing readings are kept; returns how many rows were inserted.
 */
export async function insertSyntheticReadings(
  sql: Queryable,
  plan: { deviceIds: string[]; metrics: string[]; start: Date; end: Date; stepSeconds: number },
): Promise<number> {
  const { stepSeconds } = plan;
  const result = await sql`
    INSERT INTO device_readings (device_id, metric, ts, value)
    SELECT d.id, m.name, t.ts,
           round((CASE m.name
             WHEN 'active_power' THEN 400 + 250 * sin(2 * pi() * (extract(epoch FROM t.ts) / 86400.0) + d.n) + 40 * random()
             WHEN 'energy' THEN (400 + 250 * sin(2 * pi() * (extract(epoch FROM t.ts) / 86400.0) + d.n)) * ${stepSeconds}::int / 3600.0
             WHEN 'temperature' THEN 21 + 3 * sin(2 * pi() * (extract(epoch FROM t.ts) / 86400.0) + d.n) + random() / 2
             WHEN 'illuminance' THEN greatest(0, 500 * sin(2 * pi() * (extract(epoch FROM t.ts) / 86400.0 - 0.25)) + 30 * random())
             WHEN 'occupancy' THEN (random() < 0.4)::int
             WHEN 'area_head_count' THEN floor(random() * 12)
             ELSE 100 * random()
           END)::numeric, 3)::double precision
      FROM unnest(${plan.deviceIds}::uuid[]) WITH ORDINALITY AS d(id, n)
     CROSS JOIN unnest(${plan.metrics}::text[]) AS m(name)
     CROSS JOIN generate_series(
              ${plan.start.toISOString()}::timestamptz,
              ${plan.end.toISOString()}::timestamptz - make_interval(secs => ${stepSeconds}::int),
              make_interval(secs => ${stepSeconds}::int)) AS t(ts)
    ON CONFLICT DO NOTHING`;
  return result.count;
}

/**
 * After a bulk load, what autovacuum would do in its own time, done at once (outside any
 * transaction: VACUUM cannot run in one):
 * - fresh planner statistics, as Postgres advises: a devices table of a few dozen rows never
 *   reached autovacuum's analyze threshold (50 changed rows) before migration 0021, and without
 *   its statistics the export's SELECT gets a single-process plan that sorts everything at once
 *   instead of the parallel one (docs/performance.md, "Export path");
 * - the new readings' pages marked all-visible with their hint bits set: otherwise the first
 *   export to read them sets the hint bits, dirtying every page it reads, and autovacuum's own
 *   pass over them (due once a fifth of the table's rows are new) runs under the next exports.
 */
export async function vacuumReadingTables(sql: Queryable): Promise<void> {
  await sql`VACUUM (ANALYZE) devices, spaces, device_readings`;
}
