import type { Queryable } from '../db/client';
import { insertSyntheticReadings } from '../db/statements/readings';

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
  return insertSyntheticReadings(sql, { ...plan, stepSeconds: READING_STEPS[plan.step] });
}
