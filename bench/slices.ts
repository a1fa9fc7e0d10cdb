import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { generateReadings } from '../src/demo/readings';
import { migrate } from '../src/db/migrate';
import { startEmbeddedPostgres } from '../src/embedded/postgres';
import { createCustomer, createPartner, createQuery, createUser, insertExport } from '../test/support/fixtures';

/**
 * `npm run bench:slices`: the same export (10,000,000 readings: 100 devices x 4 metrics x 25,000
 * minutes; BENCH_SLICES_MINUTES for fewer) run whole by one worker process, then as time slices
 * by 1, 2 and 4 worker processes (bin/service, ROLE=worker, WORKER_CONCURRENCY each), against its
 * own embedded Postgres and an s3rver in a process of its own, under bench/tmp-slices. Prints a
 * table and writes bench/results-slices.json; everything it started is stopped at the end. Not
 * part of `npm test`.
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
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

const log = (message: string) => process.stderr.write(`[bench:slices ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const children = new Set<ChildProcess>();
const cleanups: Array<() => Promise<void>> = [];

function start(command: string, args: string[], extraEnv: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  const keep = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 1e6) out = out.slice(-5e5);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => out };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function main(): Promise<void> {
  const tmp = path.join(root, 'bench', 'tmp-slices');
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  cleanups.push(() => fs.rm(tmp, { recursive: true, force: true }));
  const pg = await startEmbeddedPostgres({
    dataDir: path.join(tmp, 'postgres'),
    unsafeFast: process.env.BENCH_PG_UNSAFE === '1',
    settings: [],
  });
  cleanups.push(() => pg.stop());
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  await admin.unsafe('CREATE DATABASE bench');
  await admin.end();
  const url = new URL(pg.url);
  url.pathname = '/bench';
  const databaseUrl = url.toString();
  await migrate(databaseUrl);
  const sql = postgres(databaseUrl, { max: 6, onnotice: () => {} });
  cleanups.push(() => sql.end({ timeout: 5 }));

  const s3 = start(process.execPath, ['--import', 'tsx', path.join(root, 'bench/s3-server.ts'), path.join(tmp, 's3'), BUCKET], {});
  cleanups.push(() => stop(s3.child));
  const endpoint = await until('s3rver', () => /"endpoint":"([^"]+)"/.exec(s3.output())?.[1], 60_000);

  const customerId = await createCustomer(sql, await createPartner(sql));
  const user = await createUser(sql, 'customer', { customerId });
  const devices = await sql<{ id: string }[]>`
    INSERT INTO devices (customer_id, name) SELECT ${customerId}, 'Bench device ' || n FROM generate_series(1, ${DEVICES}::int) AS n RETURNING id`;
  const deviceIds = devices.map((d) => d.id);
  const seeding = performance.now();
  const chunk = 2500;
  for (let from = 0; from < MINUTES; from += chunk) {
    await sql.begin(async (tx) => {
      await tx`SET LOCAL session_replication_role = replica`;
      await generateReadings(tx, {
        deviceIds,
        metrics: METRICS,
        start: new Date(START.getTime() + from * 60_000),
        end: new Date(START.getTime() + Math.min(MINUTES, from + chunk) * 60_000),
        step: '1m',
      });
    });
  }
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
      start(path.join(root, 'bin/service'), [], {
        ROLE: 'worker',
        PORT: '0',
        DATABASE_URL: databaseUrl,
        S3_ENDPOINT: endpoint,
        S3_BUCKET: BUCKET,
        S3_ACCESS_KEY_ID: 'S3RVER',
        S3_SECRET_ACCESS_KEY: 'S3RVER',
        WORKER_CONCURRENCY: CONCURRENCY,
        EXPORT_SLICE_ROWS: run.sliceRows,
        LOG_LEVEL: 'info',
      }),
    );
    await until('workers ready', () => (workers.every((w) => w.output().includes('"msg":"ready"')) ? true : undefined), 60_000);
    const started = performance.now();
    const id = await insertExport(sql, user.id, queryId, { customerScopes: [customerId] });
    const final = await until(
      run.name,
      async () => {
        const [row] = await sql<
          { status: string; number_of_rows: string | null; total_bytes: string | null; slices: number | null; errors: unknown }[]
        >`
          SELECT status, number_of_rows, total_bytes, slices, errors FROM analytics_exports WHERE id = ${id}`;
        return row && (row.status === 'complete' || row.status === 'failed') ? row : undefined;
      },
      3_600_000,
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
    await Promise.all(workers.map((w) => stop(w.child)));
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
}

try {
  await main();
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  for (const child of children) child.kill('SIGKILL');
}
