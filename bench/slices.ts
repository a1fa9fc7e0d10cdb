import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createCustomer, createPartner, createQuery, createUser, insertExport } from '../test/support/fixtures';
import { BENCH_ROOT as root, benchDirectory, log, runBench, startService, stopChild, waitFor } from './processes';
import { seedReadings, startBenchDatabase, startBenchS3 } from './stack';

/**
 * `npm run bench:slices`: the same export (10,000,000 readings: 100 devices x 4 metrics x 25,000
 * minutes; BENCH_SLICES_MINUTES for fewer) run whole by one worker process, then as time slices
 * by 1, 2 and 4 worker processes (bin/service, ROLE=worker, WORKER_CONCURRENCY each), against its
 * own embedded Postgres and an s3rver in a process of its own, under bench/tmp-slices. Prints a
 * table and writes bench/results-slices.json; everything it started is stopped at the end. Not
 * part of `npm test`.
 */

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const DEVICES = 100;
const METRICS = ['active_power', 'energy', 'illuminance', 'temperature'];
const MINUTES = Number(env('BENCH_SLICES_MINUTES', '25000'));
const SLICE_ROWS = env('BENCH_SLICE_ROWS', '400000');
const CONCURRENCY = env('BENCH_WORKER_CONCURRENCY', '2');
const BUCKET = 'bench-slices';
const START = new Date('2026-01-01T00:00:00Z');
const RUNS: Array<{ name: string; workers: number; sliceRows: string }> = [
  { name: 'whole, 1 worker', workers: 1, sliceRows: '0' },
  { name: 'slices, 1 worker', workers: 1, sliceRows: SLICE_ROWS },
  { name: 'slices, 2 workers', workers: 2, sliceRows: SLICE_ROWS },
  { name: 'slices, 4 workers', workers: 4, sliceRows: SLICE_ROWS },
];

await runBench('bench:slices', async () => {
  const tmp = await benchDirectory(path.join(root, 'bench', 'tmp-slices'));
  const { databaseUrl, sql } = await startBenchDatabase(tmp, { unsafeFast: process.env.BENCH_PG_UNSAFE === '1', settings: [] });
  const { serviceEnv: s3Env } = await startBenchS3(tmp, BUCKET);

  const customerId = await createCustomer(sql, await createPartner(sql));
  const user = await createUser(sql, 'customer', { customerId });
  const devices = await sql<{ id: string }[]>`
    INSERT INTO devices (customer_id, name) SELECT ${customerId}, 'Bench device ' || n FROM generate_series(1, ${DEVICES}::int) AS n RETURNING id`;
  const deviceIds = devices.map((d) => d.id);
  const seeding = performance.now();
  await seedReadings(
    sql,
    { deviceIds, metrics: METRICS, start: START, fromMinute: 0, toMinute: MINUTES },
    { writers: 1, chunkMinutes: 2500 },
  );
  await sql`ANALYZE`;
  const readings = DEVICES * METRICS.length * MINUTES;
  log(`seeded ${readings} readings in ${((performance.now() - seeding) / 1000).toFixed(1)} s`);
  const end = new Date(START.getTime() + MINUTES * 60_000);
  const queryId = await createQuery(
    sql,
    user.id,
    { metrics: METRICS, start: START.toISOString(), end: end.toISOString() },
    { customerScopes: [customerId] },
  );

  const results: Array<Record<string, unknown>> = [];
  for (const run of RUNS) {
    const workers = Array.from({ length: run.workers }, () =>
      startService({
        ROLE: 'worker',
        PORT: '0',
        DATABASE_URL: databaseUrl,
        ...s3Env,
        WORKER_CONCURRENCY: CONCURRENCY,
        EXPORT_SLICE_ROWS: run.sliceRows,
        LOG_LEVEL: 'info',
      }),
    );
    await waitFor('workers ready', () => workers.every((w) => w.output().includes('"msg":"ready"')), { ms: 60_000, watching: workers });
    const started = performance.now();
    const id = await insertExport(sql, user.id, queryId, { customerScopes: [customerId] });
    const final = await waitFor(
      run.name,
      async () => {
        const [row] = await sql<
          { status: string; number_of_rows: string | null; total_bytes: string | null; slices: number | null; errors: unknown }[]
        >`
          SELECT status, number_of_rows, total_bytes, slices, errors FROM analytics_exports WHERE id = ${id}`;
        return row && (row.status === 'complete' || row.status === 'failed') ? row : undefined;
      },
      { ms: 3_600_000, pollMs: 100 },
    );
    const seconds = (performance.now() - started) / 1000;
    if (final.status !== 'complete') throw new Error(`${run.name}: ${JSON.stringify(final.errors)}`);
    const ran = workers.filter((w) => w.output().includes(`"export_id":"${id}"`)).length;
    const result = {
      run: run.name,
      worker_processes: run.workers,
      slices: final.slices ?? 1,
      processes_that_ran_it: ran,
      seconds: Math.round(seconds * 10) / 10,
      rows: Number(final.number_of_rows),
      mib: Math.round(Number(final.total_bytes) / 1048576),
      mib_per_s: Math.round(Number(final.total_bytes) / 1048576 / seconds),
    };
    results.push(result);
    log(JSON.stringify(result));
    await Promise.all(workers.map((w) => stopChild(w, 15_000)));
  }

  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1];
  const report = {
    machine: { cpus: os.cpus().length, cpu, memory_gib: Math.round(os.totalmem() / 2 ** 30) },
    readings,
    slice_rows: SLICE_ROWS,
    worker_concurrency: CONCURRENCY,
    results,
  };
  await fs.writeFile(path.join(root, 'bench', 'results-slices.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.table(results);
});
