import { issueApiKey } from '../auth/api-keys';
import type { Sql } from '../db/client';
import { insertDemoDevices, insertDemoFloors, insertDemoQueries, insertDemoRooms, insertSpace, lockDemoSeed } from '../db/statements/demo';
import { insertCustomer, insertPartner } from '../db/statements/tenants';
import { findUserByEmail, insertUser } from '../db/statements/users';
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
    await lockDemoSeed(tx);
    const existing = await findUserByEmail(tx, DEMO_ADMIN_EMAIL);
    if (existing) return { adminId: existing.id, apiKey: undefined };

    const partnerId = await insertPartner(tx, 'Demo Partner');
    const customerId = await insertCustomer(tx, partnerId, 'Demo Customer');
    const buildingId = await insertSpace(tx, customerId, 'HQ Building');
    const floors = await insertDemoFloors(tx, customerId, buildingId);
    const rooms = await insertDemoRooms(tx, customerId, floors);
    const devices = await insertDemoDevices(
      tx,
      customerId,
      rooms.map((r) => r.id),
    );

    const end = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000);
    const start = new Date(end.getTime() - DEMO_DAYS * 86_400_000);
    await generateReadings(tx, {
      deviceIds: devices.map((d) => d.id),
      metrics: DEMO_METRICS,
      start,
      end,
      step: '5m',
    });

    const adminId = await insertUser(tx, { email: DEMO_ADMIN_EMAIL, accountType: 'admin' });
    const lastDay = new Date(end.getTime() - 86_400_000);
    await insertDemoQueries(tx, { adminId, floorId: floors[0]!.id, customerId, partnerId, start, lastDay, end });
    const apiKey = await issueApiKey(tx, adminId, 'demo');
    return { adminId, apiKey };
  });
}
