import type { Queryable } from '../client';

/**
 * The statements that seed a fresh development database with demo data (src/demo/seed.ts),
 * set-based: a building of spaces with devices in them, and two analytics queries.
 */

/** Held until the transaction ends: two processes starting on one empty database must not both seed it. */
export async function lockDemoSeed(tx: Queryable): Promise<void> {
  await tx`SELECT pg_advisory_xact_lock(hashtext('analytics-export demo seed'))`;
}

export async function insertSpace(sql: Queryable, customerId: string, name: string): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO spaces (customer_id, name) VALUES (${customerId}, ${name}) RETURNING id`;
  return row!.id;
}

/** Two floors in the building. */
export async function insertDemoFloors(sql: Queryable, customerId: string, buildingId: string): Promise<{ id: string; name: string }[]> {
  return sql<{ id: string; name: string }[]>`
    INSERT INTO spaces (customer_id, parent_id, name)
    VALUES (${customerId}, ${buildingId}, 'Floor 1'), (${customerId}, ${buildingId}, 'Floor 2')
    RETURNING id, name`;
}

/** A meeting room and an open office on every floor. */
export async function insertDemoRooms(
  sql: Queryable,
  customerId: string,
  floors: { id: string; name: string }[],
): Promise<{ id: string }[]> {
  return sql<{ id: string }[]>`
    INSERT INTO spaces (customer_id, parent_id, name)
    SELECT ${customerId}, f.id, f.name || ', ' || r.name
      FROM unnest(${floors.map((f) => f.id)}::uuid[], ${floors.map((f) => f.name)}::text[]) AS f(id, name)
     CROSS JOIN (VALUES ('Meeting room'), ('Open office')) AS r(name)
    RETURNING id`;
}

/** Ten devices spread over the rooms in turn, every third a meter. */
export async function insertDemoDevices(sql: Queryable, customerId: string, roomIds: string[]): Promise<{ id: string }[]> {
  return sql<{ id: string }[]>`
    INSERT INTO devices (customer_id, space_id, name, kind)
    SELECT ${customerId}, s.id, 'Sensor ' || lpad(n::text, 2, '0'), CASE WHEN n % 3 = 0 THEN 'meter' ELSE 'sensor' END
      FROM generate_series(1, 10) AS n
      JOIN LATERAL (SELECT id FROM unnest(${roomIds}::uuid[]) WITH ORDINALITY AS r(id, i)
                     WHERE i = 1 + (n - 1) % ${roomIds.length}) AS s ON true
    RETURNING id`;
}

/** The two demo queries: raw power on a floor over the last day, and hourly averages over the whole range. */
export async function insertDemoQueries(
  sql: Queryable,
  demo: { adminId: string; floorId: string; customerId: string; partnerId: string; start: Date; lastDay: Date; end: Date },
): Promise<void> {
  await sql`
    INSERT INTO analytics_queries
      (created_by, name, notes, metrics, spaces, start, "end", interval, aggregation, customer_scopes, partner_scopes)
    VALUES
      (${demo.adminId}, 'Floor 1 power, raw, last day', 'Every reading of active power on Floor 1',
       ${['active_power']}::text[], ${[demo.floorId]}::uuid[], ${demo.lastDay.toISOString()}, ${demo.end.toISOString()},
       'raw', NULL, ${[demo.customerId]}::uuid[], ${[demo.partnerId]}::uuid[]),
      (${demo.adminId}, 'Hourly temperature and energy, two weeks', 'Hourly averages for every device',
       ${['temperature', 'energy']}::text[], '{}'::uuid[], ${demo.start.toISOString()}, ${demo.end.toISOString()},
       '1h', 'avg', ${[demo.customerId]}::uuid[], ${[demo.partnerId]}::uuid[])`;
}
