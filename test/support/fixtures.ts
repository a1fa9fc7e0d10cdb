import { generateReadings } from '../../src/demo/readings';
import { issueApiKey } from '../../src/auth/api-keys';
import type { Queryable } from '../../src/db/client';
import { insertExport as insertExportRow } from '../../src/db/statements/exports';
import { insertQuery } from '../../src/db/statements/queries';
import { insertCustomer, insertPartner } from '../../src/db/statements/tenants';
import { insertUser } from '../../src/db/statements/users';
import type { ExportEncoding } from '../../src/exports/formats';

/**
 * Small builders for the domain objects tests need, through the production statements
 * (src/db/statements). Each returns ids; names are unique enough for one test database.
 */

let counter = 0;
/** analytics_exports.max_attempts's default, as EXPORT_MAX_ATTEMPTS leaves it. */
const DEFAULT_MAX_ATTEMPTS = 5;
const unique = (prefix: string) => `${prefix} ${++counter}`;

export async function createPartner(sql: Queryable, name = unique('Partner')): Promise<string> {
  return insertPartner(sql, name);
}

export async function createCustomer(sql: Queryable, partnerId: string, name = unique('Customer')): Promise<string> {
  return insertCustomer(sql, partnerId, name);
}

export interface TestUser {
  id: string;
  apiKey: string;
  accountType: 'admin' | 'partner' | 'customer';
  partnerId: string | null;
  customerId: string | null;
}

export async function createUser(
  sql: Queryable,
  accountType: TestUser['accountType'],
  membership: { partnerId?: string; customerId?: string } = {},
): Promise<TestUser> {
  const partnerId = membership.partnerId ?? null;
  const customerId = membership.customerId ?? null;
  const id = await insertUser(sql, { email: `user${++counter}-${Date.now()}@example.test`, accountType, partnerId, customerId });
  const apiKey = await issueApiKey(sql, id, 'test');
  return { id, apiKey, accountType, partnerId, customerId };
}

export async function createSpace(sql: Queryable, customerId: string, options: { parentId?: string; name?: string } = {}): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO spaces (customer_id, parent_id, name) VALUES (${customerId}, ${options.parentId ?? null}, ${options.name ?? unique('Space')})
    RETURNING id`;
  return row!.id;
}

export async function createDevice(
  sql: Queryable,
  customerId: string,
  options: { spaceId?: string; name?: string; kind?: string } = {},
): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO devices (customer_id, space_id, name, kind)
    VALUES (${customerId}, ${options.spaceId ?? null}, ${options.name ?? unique('Device')}, ${options.kind ?? 'sensor'})
    RETURNING id`;
  return row!.id;
}

export interface QueryDefinition {
  metrics: string[];
  devices?: string[];
  spaces?: string[];
  start: string;
  end: string;
  interval?: 'raw' | '1m' | '5m' | '15m' | '1h' | '1d';
  aggregation?: 'avg' | 'min' | 'max' | 'sum' | 'count' | null;
  timezone?: string;
}

export async function createQuery(
  sql: Queryable,
  createdBy: string,
  definition: QueryDefinition,
  common: { name?: string; customerScopes?: string[]; partnerScopes?: string[] } = {},
): Promise<string> {
  return insertQuery(sql, createdBy, {
    name: common.name ?? unique('Query'),
    notes: '',
    tags: [],
    customerScopes: common.customerScopes ?? [],
    partnerScopes: common.partnerScopes ?? [],
    metrics: definition.metrics,
    devices: definition.devices ?? [],
    spaces: definition.spaces ?? [],
    start: definition.start,
    end: definition.end,
    interval: definition.interval ?? 'raw',
    aggregation: definition.aggregation ?? null,
    timezone: definition.timezone ?? 'UTC',
  });
}

/** Inserts an export straight into the table, unchecked (born queued; the trigger adds its job). */
export async function insertExport(
  sql: Queryable,
  createdBy: string,
  queryId: string,
  fields: { name?: string; customerScopes?: string[]; partnerScopes?: string[]; tags?: string[] } & Partial<ExportEncoding> = {},
): Promise<string> {
  const row = await insertExportRow(sql, {
    createdBy,
    name: fields.name ?? unique('Export'),
    notes: '',
    queryId,
    tags: fields.tags ?? [],
    customerScopes: fields.customerScopes ?? [],
    partnerScopes: fields.partnerScopes ?? [],
    maxAttempts: DEFAULT_MAX_ATTEMPTS,
    format: fields.format,
    compression: fields.compression,
    formulaGuard: fields.formulaGuard,
  });
  return row.id;
}

/**
 * The usual cast of an API test: a partner, its customer, a customer user with an API key, and
 * a one-day temperature query scoped to that customer.
 */
export async function createCustomerWithQuery(
  sql: Queryable,
): Promise<{ partnerId: string; customerId: string; user: TestUser; queryId: string }> {
  const partnerId = await createPartner(sql);
  const customerId = await createCustomer(sql, partnerId);
  const user = await createUser(sql, 'customer', { customerId });
  const queryId = await createQuery(
    sql,
    user.id,
    { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' },
    { customerScopes: [customerId] },
  );
  return { partnerId, customerId, user, queryId };
}

/** January 2026: the month the readings of seedCustomerReadings start with. */
export const READINGS_START = new Date('2026-01-01T00:00:00Z');

/**
 * A customer with `devices` devices, each with active power and temperature every minute for
 * `days` days from READINGS_START, its user, and a raw query over all of it: an export of a
 * known size (`rows`).
 */
export async function seedCustomerReadings(sql: Queryable, devices: number, days: number) {
  const customerId = await createCustomer(sql, await createPartner(sql));
  const user = await createUser(sql, 'customer', { customerId });
  const deviceIds: string[] = [];
  for (let i = 0; i < devices; i++) deviceIds.push(await createDevice(sql, customerId));
  const end = new Date(READINGS_START.getTime() + days * 86_400_000);
  const metrics = ['active_power', 'temperature'];
  const rows = await generateReadings(sql, { deviceIds, metrics, start: READINGS_START, end, step: '1m' });
  const queryId = await createQuery(sql, user.id, { metrics, start: READINGS_START.toISOString(), end: end.toISOString() });
  return { customerId, user, deviceIds, queryId, rows };
}
