import { issueApiKey } from '../auth/api-keys';
import type { Sql } from '../db/client';
import { generateReadings } from './readings';

/**
 * Demo data for a fresh development database: one partner with one customer, a building of
 * spaces with devices in them, two weeks of readings (161,280 rows), an admin with an API key,
 * and two analytics queries over that data. Seeded once; a later start finds the admin and
 * leaves everything as it is.
 */

export const DEMO_ADMIN_EMAIL = 'admin@demo.example';
const DEMO_METRICS = ['active_power', 'energy', 'temperature', 'occupancy'];
const DEMO_DAYS = 14;

export interface DemoSeed {
  adminId: string;
  /** Set when this call created the admin (and so minted its first key). */
  apiKey: string | undefined;
}

export async function seedDemoData(sql: Sql, now = new Date()): Promise<DemoSeed> {
  return sql.begin(async (tx) => {
    // Two processes starting on one empty database must not both seed it.
    await tx`SELECT pg_advisory_xact_lock(hashtext('analytics-export demo seed'))`;
    const [existing] = await tx<{ id: string }[]>`SELECT id FROM users WHERE lower(email) = ${DEMO_ADMIN_EMAIL}`;
    if (existing) return { adminId: existing.id, apiKey: undefined };

    const [partner] = await tx<{ id: string }[]>`INSERT INTO partners (name) VALUES ('Demo Partner') RETURNING id`;
    const [customer] = await tx<{ id: string }[]>`
      INSERT INTO customers (partner_id, name) VALUES (${partner!.id}, 'Demo Customer') RETURNING id`;
    const customerId = customer!.id;
    const [building] = await tx<{ id: string }[]>`
      INSERT INTO spaces (customer_id, name) VALUES (${customerId}, 'HQ Building') RETURNING id`;
    const floors = await tx<{ id: string; name: string }[]>`
      INSERT INTO spaces (customer_id, parent_id, name)
      VALUES (${customerId}, ${building!.id}, 'Floor 1'), (${customerId}, ${building!.id}, 'Floor 2')
      RETURNING id, name`;
    const rooms = await tx<{ id: string }[]>`
      INSERT INTO spaces (customer_id, parent_id, name)
      SELECT ${customerId}, f.id, f.name || ', ' || r.name
        FROM unnest(${floors.map((f) => f.id)}::uuid[], ${floors.map((f) => f.name)}::text[]) AS f(id, name)
       CROSS JOIN (VALUES ('Meeting room'), ('Open office')) AS r(name)
      RETURNING id`;
    const devices = await tx<{ id: string }[]>`
      INSERT INTO devices (customer_id, space_id, name, kind)
      SELECT ${customerId}, s.id, 'Sensor ' || lpad(n::text, 2, '0'), CASE WHEN n % 3 = 0 THEN 'meter' ELSE 'sensor' END
        FROM generate_series(1, 10) AS n
        JOIN LATERAL (SELECT id FROM unnest(${rooms.map((r) => r.id)}::uuid[]) WITH ORDINALITY AS r(id, i)
                       WHERE i = 1 + (n - 1) % ${rooms.length}) AS s ON true
      RETURNING id`;

    const end = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000);
    const start = new Date(end.getTime() - DEMO_DAYS * 86_400_000);
    await generateReadings(tx, {
      deviceIds: devices.map((d) => d.id),
      metrics: DEMO_METRICS,
      start,
      end,
      step: '5m',
    });

    const [admin] = await tx<{ id: string }[]>`
      INSERT INTO users (email, account_type) VALUES (${DEMO_ADMIN_EMAIL}, 'admin') RETURNING id`;
    const adminId = admin!.id;
    const lastDay = new Date(end.getTime() - 86_400_000);
    await tx`
      INSERT INTO analytics_queries
        (created_by, name, notes, metrics, spaces, start, "end", interval, aggregation, customer_scopes, partner_scopes)
      VALUES
        (${adminId}, 'Floor 1 power, raw, last day', 'Every reading of active power on Floor 1',
         ${['active_power']}::text[], ${[floors[0]!.id]}::uuid[], ${lastDay.toISOString()}, ${end.toISOString()},
         'raw', NULL, ${[customerId]}::uuid[], ${[partner!.id]}::uuid[]),
        (${adminId}, 'Hourly temperature and energy, two weeks', 'Hourly averages for every device',
         ${['temperature', 'energy']}::text[], '{}'::uuid[], ${start.toISOString()}, ${end.toISOString()},
         '1h', 'avg', ${[customerId]}::uuid[], ${[partner!.id]}::uuid[])`;
    const apiKey = await issueApiKey(tx, adminId, 'demo');
    return { adminId, apiKey };
  });
}
