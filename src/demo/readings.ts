import type { Queryable } from '../db/client';

/**
 * Synthetic device readings, written set-based in one INSERT ... SELECT so that millions of rows
 * take seconds. Values follow daily cycles per metric with a little noise, so aggregations and
 * charts over them look like real buildings.
 */

export const READING_STEPS = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600 } as const;
export type ReadingStep = keyof typeof READING_STEPS;

export interface ReadingsPlan {
  deviceIds: string[];
  metrics: string[];
  start: Date;
  end: Date;
  step: ReadingStep;
}

/** Number of readings a plan writes: devices x steps x metrics (end exclusive). */
export function countReadings(plan: ReadingsPlan): number {
  const steps = Math.max(0, Math.floor((plan.end.getTime() - plan.start.getTime()) / 1000 / READING_STEPS[plan.step]));
  return plan.deviceIds.length * plan.metrics.length * steps;
}

/** Writes the plan's readings (existing ones are kept) and returns how many rows were inserted. */
export async function generateReadings(sql: Queryable, plan: ReadingsPlan): Promise<number> {
  const stepSeconds = READING_STEPS[plan.step];
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
