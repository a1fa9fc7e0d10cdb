import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, test } from 'node:test';
import { createDatabase } from '../../src/db/client';
import { migrate } from '../../src/db/migrate';
import { startEmbeddedPostgres } from '../../src/embedded/postgres';
import { testEnvironment } from '../support/environment';
import { createCustomer, createDevice, createPartner, createSpace, createUser } from '../support/fixtures';
import { waitFor } from '../support/wait';

/**
 * A deployment with a few dozen devices: autovacuum gives the tables an export's visibility reads
 * their statistics, although each has fewer changed rows than autovacuum's default analyze
 * threshold (50). On a cluster of this file's own, whose autovacuum looks every second.
 */

const dataDir = path.join(testEnvironment.tmpDir, `analyze-${randomBytes(6).toString('hex')}`, 'postgres');
const cluster = await startEmbeddedPostgres({ dataDir, unsafeFast: true, settings: ['autovacuum_naptime=1'] });
after(() => cluster.stop());
await migrate(cluster.url);
const database = createDatabase(cluster.url, { max: 2 });
after(() => database.close());
const { sql } = database;

test('autovacuum analyzes devices, spaces, customers, partners and users of a small deployment, so an export plans for its real devices', async () => {
  const partnerId = await createPartner(sql);
  const customerId = await createCustomer(sql, partnerId);
  await createUser(sql, 'customer', { customerId });
  const spaceId = await createSpace(sql, customerId);
  for (let n = 0; n < 14; n++) await createDevice(sql, customerId, { spaceId });

  const tables = ['devices', 'spaces', 'customers', 'partners', 'users'];
  const analyzed = await waitFor(
    async () => {
      const rows = await sql<{ relname: string }[]>`
        SELECT relname FROM pg_stat_user_tables WHERE relname = ANY (${tables}) AND last_autoanalyze IS NOT NULL`;
      return rows.length === tables.length ? rows : undefined;
    },
    30_000,
    'autovacuum to analyze the small tables',
  );
  assert.equal(analyzed.length, tables.length);

  // What the statistics are for: the planner's estimate of the export's devices. Never analyzed,
  // the devices table gives it one device (and the export a serial plan that sorts every reading).
  const [plan] = await sql<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }[]>`
    EXPLAIN (FORMAT JSON) SELECT * FROM devices WHERE customer_id = ${customerId}`;
  assert.equal(plan!['QUERY PLAN'][0]!.Plan['Plan Rows'], 14);
});
