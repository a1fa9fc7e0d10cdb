import { vacuumReadingTables } from '../db/statements/readings';
import { formatTimestamp } from '../db/timestamps';
import { countReadings, generateReadings, READING_STEPS, type ReadingStep } from '../demo/readings';
import { assertExists, command, integerOption, UsageError, uuidOption } from './command';

/**
 * Demo devices with synthetic readings for a customer: one building space holding N devices,
 * D days of readings up to the last full hour, every metric at every step. Written set-based in
 * one statement (src/demo/readings.ts), so millions of readings take seconds.
 */
/** Parallel writers; the CLI's pool (src/cli/index.ts) has room for them. */
export const WRITERS = 4;

export const demoData = command({
  usage: 'demo-data --customer ID [--devices N] [--days D] [--step 1m|5m|15m|1h] [--metrics a,b]',
  summary: 'Write demo devices and synthetic readings for a customer.',
  options: {
    customer: { type: 'string' },
    devices: { type: 'string' },
    days: { type: 'string' },
    step: { type: 'string' },
    metrics: { type: 'string' },
  },
  parse({ values }) {
    const customerId = uuidOption(values, 'customer');
    if (!customerId) throw new UsageError('--customer is required');
    const deviceCount = integerOption(values, 'devices', 1, 10_000, 10);
    const days = integerOption(values, 'days', 1, 3660, 7);
    const step = (values.step ?? '5m') as ReadingStep;
    if (!(step in READING_STEPS)) throw new UsageError(`--step must be one of ${Object.keys(READING_STEPS).join(', ')}`);
    const metrics = values.metrics === undefined ? undefined : [...new Set(values.metrics.split(',').map((m) => m.trim()))];
    if (metrics?.some((m) => m === '')) throw new UsageError('--metrics must be a comma-separated list of metric names');
    return { customerId, deviceCount, days, step, metrics };
  },
  async run({ customerId, deviceCount, days, step, metrics: requested }, sql) {
    const catalogue = (await sql<{ name: string }[]>`SELECT name FROM metrics ORDER BY name`).map((m) => m.name);
    const metrics = requested ?? catalogue;
    const unknown = metrics.filter((m) => !catalogue.includes(m));
    if (unknown.length > 0) {
      throw new UsageError(`--metrics must name metrics from the catalogue (${catalogue.join(', ')}); unknown: ${unknown.join(', ')}`);
    }
    await assertExists(sql, 'customers', customerId);

    const end = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000);
    const start = new Date(end.getTime() - days * 86_400_000);
    const deviceIds = await sql.begin(async (tx) => {
      const [space] = await tx<{ id: string }[]>`
        INSERT INTO spaces (customer_id, name) VALUES (${customerId}, 'Demo building') RETURNING id`;
      const devices = await tx<{ id: string }[]>`
        INSERT INTO devices (customer_id, space_id, name, kind)
        SELECT ${customerId}, ${space!.id}, 'Demo device ' || lpad(n::text, 4, '0'), 'sensor'
          FROM generate_series(1, ${deviceCount}::int) AS n ORDER BY n
        RETURNING id`;
      return devices.map((d) => d.id);
    });

    // One INSERT ... SELECT per slice of the devices, on parallel connections: the writes are
    // CPU-bound in Postgres, so slices use the server's cores (2M readings in under 30 s on 2).
    const slices = Array.from({ length: WRITERS }, (_, i) => deviceIds.filter((_id, n) => n % WRITERS === i)).filter((s) => s.length > 0);
    const written = await Promise.all(
      slices.map((slice) =>
        sql.begin(async (tx) => {
          // Per-row foreign-key checks cost about a third of the time. These readings refer only
          // to the devices made above and to metrics checked against the catalogue, so a
          // superuser (the embedded development database's role) skips the checks for this
          // transaction alone; any other role writes them checked, only slower.
          const [role] = await tx<{ superuser: boolean }[]>`SELECT current_setting('is_superuser') = 'on' AS superuser`;
          if (role!.superuser) await tx`SET LOCAL session_replication_role = replica`;
          return generateReadings(tx, { deviceIds: slice, metrics, start, end, step });
        }),
      ),
    );
    const readings = written.reduce((a, b) => a + b, 0);
    const expected = countReadings({ deviceIds, metrics, start, end, step });
    if (readings !== expected) throw new Error(`wrote ${readings} readings, expected ${expected}`);
    await vacuumReadingTables(sql);
    return { devices: deviceIds, metrics, readings, start: formatTimestamp(start), end: formatTimestamp(end) };
  },
});
