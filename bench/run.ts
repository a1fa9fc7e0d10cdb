import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { closeHttpClient, requestJson } from './http-client';
import { openLoop } from './open-loop';
import {
  BENCH_ROOT as root,
  benchDirectory,
  log,
  MEMORY_SETTINGS,
  onCleanup,
  passedOn,
  round,
  runBench,
  runCommand,
  sleep,
  startHelper,
  startService,
  stopChild,
  waitFor,
} from './processes';
import { cpuSeconds, peakRssMiB, postgresCpuSeconds, resetPeakRss } from './proc-stats';
import { seedReadings as seedBenchReadings, startBenchDatabase, startBenchS3 } from './stack';
import { measureZeroConfig, ZERO_CONFIG_TARGETS } from './zero-config';
import type postgres from 'postgres';
import { loadConfig } from '../src/config';
import { findFreePort } from '../src/embedded/free-port';
import { compileExportQuery } from '../src/exports/load-export-query';
import { CSV_HEADER } from '../src/exports/formats';
import { deleteObject } from '../src/storage/objects';
import { createCustomer, createPartner, createQuery, createUser } from '../test/support/fixtures';

/**
 * `npm run bench` (and `npm run bench -- --large`): starts its own embedded Postgres, s3rver and
 * the service (API and worker as separate processes) under bench/tmp, measures the export path
 * against COPY alone and upload alone, the API under autocannon, and queue latency; prints a table
 * and writes bench/results.json. Everything it started is stopped at the end, whatever happened.
 * Not part of `npm test`.
 */

const args = new Set(process.argv.slice(2));
const LARGE = args.has('--large');
/**
 * --only=zero-config,export,queue,api: only those parts (for profiling one quickly; the figures go to
 * bench/results-partial.json). --skip-export is --only=queue,api (no readings are seeded).
 */
const PARTS = ['zero-config', 'export', 'queue', 'api'] as const;
const onlyArg = process.argv.slice(2).find((a) => a.startsWith('--only='));
const ONLY = new Set<string>(onlyArg ? onlyArg.slice('--only='.length).split(',') : args.has('--skip-export') ? ['queue', 'api'] : PARTS);
for (const part of ONLY)
  if (!(PARTS as readonly string[]).includes(part)) throw new Error(`--only: unknown part ${part} (${PARTS.join(', ')})`);
const SKIP_EXPORT = !ONLY.has('export');
const PARTIAL = ONLY.size < PARTS.length;
/** BENCH_CPU_PROF=dir: the service processes write V8 CPU profiles there (node --cpu-prof). */
const CPU_PROF = process.env.BENCH_CPU_PROF;
/**
 * What the service processes get of the bench's environment: the CPU profile flag, and when set
 * (for before/after figures) bin/service's memory settings and EXPORT_SLICE_ROWS (which also
 * reaches the zero-config service, whose 2,016,000-row export is otherwise cut into 2 slices).
 */
const PROCESS_ENV: Record<string, string> = {
  ...(CPU_PROF ? { NODE_FLAGS: `--cpu-prof --cpu-prof-dir=${path.resolve(CPU_PROF)}` } : {}),
  ...passedOn([...MEMORY_SETTINGS, 'EXPORT_SLICE_ROWS']),
};
const BUCKET = 'bench-exports';
const DEVICES = 100;
const METRICS = ['active_power', 'energy', 'illuminance', 'temperature'];
const SMALL_MINUTES = 5000; // 100 devices x 4 metrics x 5,000 minutes = 2,000,000 readings
const LARGE_MINUTES = 25_000; // ... x 25,000 minutes = 10,000,000
const START = new Date('2026-01-01T00:00:00Z');
const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const QUEUE_LATENCY_EXPORTS = Number(env('BENCH_LATENCY_EXPORTS', '200'));
const QUEUE_RATE_EXPORTS = Number(env('BENCH_RATE_EXPORTS', '1000'));
const REPEAT = Number(env('BENCH_REPEAT', '2'));
/** BENCH_PG_STATEMENTS=1: pg_stat_statements on; the statements that took most of the server's time go to stderr at the end. */
const PG_STATEMENTS = process.env.BENCH_PG_STATEMENTS === '1';
/**
 * BENCH_PG_SETTINGS='name=value name=value': more settings for the bench's Postgres (e.g.
 * auto_explain's, to see the plan each export's COPY ran); BENCH_PG_LOG=file: its server log goes there.
 */
const PG_SETTINGS = (process.env.BENCH_PG_SETTINGS ?? '').split(/\s+/).filter(Boolean);
const PG_LOG = process.env.BENCH_PG_LOG;
/**
 * The service runs with its own defaults; these, when set in the bench's environment, are passed
 * on (for before/after figures): the service's knobs and bin/service's memory settings.
 */
const SERVICE_ENV: Record<string, string> = passedOn([
  'WORKER_CONCURRENCY',
  'EXPORT_MAX_RUNNING_PER_CUSTOMER',
  'EXPORT_SLICE_ROWS',
  'EXPORT_MAX_FILE_MIB',
  'EXPORT_PART_SIZE_MIB',
  'EXPORT_UPLOAD_QUEUE_SIZE',
  'DATABASE_POOL_SIZE',
  ...MEMORY_SETTINGS,
]);

const minutes = (n: number) => new Date(START.getTime() + n * 60_000);
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

// ---------------------------------------------------------------- main

await runBench('bench', async () => {
  const results: Record<string, unknown> = {};
  const started = Date.now();
  const tmp = await benchDirectory(path.join(root, 'bench', 'tmp', `run-${process.pid}`));

  results.machine = await machine();
  log(`machine: ${JSON.stringify(results.machine)}`);

  // ------------------------------------------------------------ 0. zero-config (bench/zero-config.ts)
  if (ONLY.has('zero-config')) {
    results.zeroConfig = await measureZeroConfig({ tmp, repeat: REPEAT, serviceEnv: PROCESS_ENV });
  }

  // Durable by default, as a deployment runs; BENCH_PG_UNSAFE=1 turns fsync off (as the tests do) to see what commits cost.
  const {
    dataDir: pgDataDir,
    databaseUrl,
    sql,
  } = await startBenchDatabase(tmp, {
    unsafeFast: process.env.BENCH_PG_UNSAFE === '1',
    settings: [...(PG_STATEMENTS ? ['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all'] : []), ...PG_SETTINGS],
    ...(PG_LOG ? { onLog: (line: string) => appendFileSync(PG_LOG, line) } : {}),
  });
  if (PG_STATEMENTS) await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
  (results.machine as Record<string, unknown>).postgres = (await sql<{ v: string }[]>`SELECT current_setting('server_version') AS v`)[0]!.v;

  const { process: s3, client: s3Client, serviceEnv: s3Env } = await startBenchS3(tmp, BUCKET);

  // ------------------------------------------------------------ data
  const partnerId = await createPartner(sql);
  const customerId = await createCustomer(sql, partnerId);
  const user = await createUser(sql, 'customer', { customerId });
  const deviceIds = await seedDevices(sql, customerId);
  let seeded = performance.now();
  if (!SKIP_EXPORT) await seedReadings(sql, deviceIds, 0, SMALL_MINUTES);
  log(`seeded 2M readings in ${round((performance.now() - seeded) / 1000)} s`);
  const smallQuery = await createQuery(
    sql,
    user.id,
    { metrics: METRICS, start: minutes(0).toISOString(), end: minutes(SMALL_MINUTES).toISOString() },
    { customerScopes: [customerId] },
  );
  const oneRowQuery = await createQuery(
    sql,
    user.id,
    {
      metrics: ['temperature'],
      devices: [deviceIds[0]!],
      start: minutes(0).toISOString(),
      end: minutes(1).toISOString(),
    },
    { customerScopes: [customerId] },
  );

  // ------------------------------------------------------------ service
  const serviceEnv = {
    DATABASE_URL: databaseUrl,
    ...s3Env,
    HOST: '127.0.0.1',
    // The export path compares one export with one COPY and one upload of the same rows: the
    // export runs whole unless EXPORT_SLICE_ROWS is given (slices: npm run bench:slices) ...
    EXPORT_SLICE_ROWS: '0',
    // ... and as one file (10M rows are 1.4 GiB, past the default 1 GiB) unless EXPORT_MAX_FILE_MIB
    // is given. Sliced or split, each file after the first adds one CSV header to the bytes.
    EXPORT_MAX_FILE_MIB: '4096',
    ...SERVICE_ENV,
  };
  const apiPort = await findFreePort();
  const api = startService({ ...PROCESS_ENV, ...serviceEnv, ROLE: 'api', PORT: String(apiPort), LOG_LEVEL: 'warn' });
  onCleanup(() => stopChild(api));
  // The worker's own /metrics and /healthz on any free port: the default (3000) may be taken.
  const worker = startService({ ...PROCESS_ENV, ...serviceEnv, ROLE: 'worker', PORT: '0', LOG_LEVEL: 'info' });
  onCleanup(() => stopChild(worker));
  const baseUrl = `http://127.0.0.1:${apiPort}`;
  await waitFor(
    'API',
    () =>
      fetch(`${baseUrl}/healthz`).then(
        (r) => r.ok,
        () => false,
      ),
    { ms: 60_000, watching: [api] },
  );
  await waitFor('worker', () => worker.output().includes('"msg":"ready"'), { ms: 60_000, watching: [worker] });
  log(`service up (api pid ${api.child.pid}, worker pid ${worker.child.pid})`);
  const effective = loadConfig({ ...serviceEnv, ROLE: 'worker' });
  results.settings = {
    WORKER_CONCURRENCY: effective.workerConcurrency,
    EXPORT_PART_SIZE_MIB: effective.export.partSizeBytes / 1048576,
    EXPORT_UPLOAD_QUEUE_SIZE: effective.export.uploadQueueSize,
    DATABASE_POOL_SIZE: effective.databasePoolSize,
    EXPORT_SLICE_ROWS: effective.export.sliceRows,
    EXPORT_MAX_FILE_MIB: effective.export.maxFileBytes / 1048576,
    ...SERVICE_ENV,
    postgresFsync: process.env.BENCH_PG_UNSAFE === '1' ? 'off' : 'on',
  };

  const headers = { authorization: `Bearer ${user.apiKey}`, 'content-type': 'application/json' };
  onCleanup(async () => closeHttpClient());
  const post = async (query: string, name: string): Promise<string> => {
    const response = await requestJson('POST', `${baseUrl}/analytics/export`, headers, { name, query });
    if (response.status !== 201) throw new Error(`POST /analytics/export: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body.id as string;
  };
  const waitDone = async (id: string, pollMs = 100): Promise<Record<string, unknown>> => {
    for (;;) {
      const { body } = await requestJson('GET', `${baseUrl}/analytics/exports/${id}/`, headers);
      if (body.status === 'complete') return body;
      if (body.status === 'failed') throw new Error(`export ${id} failed: ${JSON.stringify(body.errors)}`);
      await sleep(pollMs);
    }
  };

  // ------------------------------------------------------------ 1. export path
  const exportPath: Record<string, unknown> = {};
  if (!SKIP_EXPORT) exportPath['2M'] = await measureExportPath('2M', smallQuery);
  if (LARGE) {
    seeded = performance.now();
    await seedReadings(sql, deviceIds, SMALL_MINUTES, LARGE_MINUTES);
    log(`seeded 8M more readings in ${round((performance.now() - seeded) / 1000)} s`);
    const largeQuery = await createQuery(
      sql,
      user.id,
      { metrics: METRICS, start: minutes(0).toISOString(), end: minutes(LARGE_MINUTES).toISOString() },
      { customerScopes: [customerId] },
    );
    exportPath['10M'] = await measureExportPath('10M', largeQuery, Number(env('BENCH_REPEAT_LARGE', '1')));
    const small = exportPath['2M'] as { workerPeakRssMiB: number };
    const large = exportPath['10M'] as { workerPeakRssMiB: number };
    exportPath.rssGrowth2Mto10M = round(large.workerPeakRssMiB / small.workerPeakRssMiB - 1, 3);
  }
  results.exportPath = exportPath;

  async function measureExportPath(label: string, queryId: string, repeat = REPEAT) {
    const runs: Array<{
      exportMs: number;
      copyMs: number;
      uploadMs: number;
      workerPeakRssMiB: number;
      workerCpuS: number;
      s3CpuS: number;
      files: number;
    }> = [];
    let rows = 0;
    let bytes = 0;
    for (let i = 0; i < repeat; i++) {
      // The real export, end to end through the API: POST, then poll until complete.
      await resetPeakRss(worker.child.pid!);
      const cpu0 = { worker: cpuSeconds(worker.child.pid!), s3: cpuSeconds(s3.child.pid!) };
      const t0 = performance.now();
      const id = await post(queryId, `bench ${label} ${i}`);
      const done = await waitDone(id, 50);
      const exportMs = performance.now() - t0;
      const workerPeakRssMiB = peakRssMiB(worker.child.pid!);
      const workerCpuS = round(cpuSeconds(worker.child.pid!) - cpu0.worker, 2);
      const s3CpuS = round(cpuSeconds(s3.child.pid!) - cpu0.s3, 2);
      rows = done.number_of_rows as number;
      bytes = done.total_bytes as number;

      // COPY alone: psql's COPY of the export's own SELECT, to /dev/null, with the worker's setting.
      const select = (await compileExportQuery(sql, id)).replace(/\s+/g, ' ');
      const psqlEnv = { PGOPTIONS: '-c extra_float_digits=1' };
      const copyMs = await runCommand(
        'psql',
        [databaseUrl, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy (${select}) to '/dev/null' with (format csv, header)`],
        { env: psqlEnv },
      );

      // Upload alone: the same bytes from a file through the same Upload settings into the same s3rver.
      const file = path.join(tmp, `export-${label}.csv`);
      if (!existsSync(file))
        await runCommand(
          'psql',
          [databaseUrl, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy (${select}) to '${file}' with (format csv, header)`],
          { env: psqlEnv },
        );
      const uploader = startHelper('bench/upload-file.ts', [file, `bench/upload-${label}-${i}.csv`], serviceEnv);
      const code = await uploader.exited;
      if (code !== 0) throw new Error(`upload alone failed (${code}): ${uploader.output()}`);
      const uploaded = JSON.parse(uploader.output().trim().split('\n').pop()!) as { ms: number; bytes: number };
      // The export's files each begin with the CSV header, the single file uploaded alone once.
      const files = (done.files as unknown[] | undefined)?.length ?? 1;
      const expected = uploaded.bytes + (files - 1) * Buffer.byteLength(CSV_HEADER);
      if (bytes !== expected)
        throw new Error(`upload alone sent ${uploaded.bytes} bytes, the export ${bytes} in ${files} file(s) (expected ${expected})`);
      runs.push({
        exportMs: round(exportMs),
        copyMs: round(copyMs),
        uploadMs: round(uploaded.ms),
        workerPeakRssMiB: round(workerPeakRssMiB),
        workerCpuS,
        s3CpuS,
        files,
      });
      log(
        `${label} run ${i + 1}: export ${round(exportMs / 1000, 2)} s, COPY alone ${round(copyMs / 1000, 2)} s, upload alone ${round(uploaded.ms / 1000, 2)} s, worker peak RSS ${round(workerPeakRssMiB)} MiB, CPU during the export: worker ${workerCpuS} s, s3rver ${s3CpuS} s; ${files} file(s)`,
      );
      // Keep the disk small: the objects are not needed any more (the bucket stays).
      const owned = await sql<{ object_key: string }[]>`
        SELECT object_key FROM analytics_exports WHERE id = ${id}
        UNION SELECT object_key FROM analytics_export_files WHERE export_id = ${id}`;
      for (const { object_key } of owned) await deleteObject(s3Client, BUCKET, object_key);
      await deleteObject(s3Client, BUCKET, `bench/upload-${label}-${i}.csv`);
    }
    // Best of the runs for each, so that a noisy run does not decide the ratio.
    const best = (key: 'exportMs' | 'copyMs' | 'uploadMs') => Math.min(...runs.map((r) => r[key]));
    const exportMs = best('exportMs');
    const slower = Math.max(best('copyMs'), best('uploadMs'));
    return {
      rows,
      bytes,
      exportMs,
      copyAloneMs: best('copyMs'),
      uploadAloneMs: best('uploadMs'),
      ratio: round(exportMs / slower, 3),
      exportMiBps: round(bytes / 1048576 / (exportMs / 1000)),
      workerPeakRssMiB: Math.max(...runs.map((r) => r.workerPeakRssMiB)),
      runs,
    };
  }

  // ------------------------------------------------------------ 3. queue
  // POST to running, one export at a time with the workers idle: started - created, both DB clock.
  // The API part GETs one of these (one complete export).
  const latencyIds: string[] = [];
  if (!ONLY.has('queue')) {
    latencyIds.push(await post(oneRowQuery, 'for GET'));
    await waitDone(latencyIds[0]!, 5);
  }
  if (ONLY.has('queue')) {
    for (let i = 0; i < QUEUE_LATENCY_EXPORTS; i++) {
      const id = await post(oneRowQuery, `latency ${i}`);
      latencyIds.push(id);
      await waitDone(id, 5);
      await sleep(20); // let the workers go idle again
    }
    const latencies = (
      await sql<{ ms: number }[]>`
        SELECT extract(epoch FROM started - created) * 1000 AS ms FROM analytics_exports WHERE id = ANY(${latencyIds}::uuid[])`
    ).map((r) => Number(r.ms));
    results.queue = {
      postToRunning: {
        exports: latencies.length,
        p50Ms: round(percentile(latencies, 50), 2),
        p99Ms: round(percentile(latencies, 99), 2),
        maxMs: round(Math.max(...latencies), 2),
      },
    };
    log(`POST to running: p50 ${round(percentile(latencies, 50), 2)} ms, p99 ${round(percentile(latencies, 99), 2)} ms`);

    // 1,000 one-row exports end to end: POSTed from 20 clients at once, until the last is complete.
    {
      const cpu = () => ({
        api: cpuSeconds(api.child.pid!),
        worker: cpuSeconds(worker.child.pid!),
        s3: cpuSeconds(s3.child.pid!),
        postgres: postgresCpuSeconds(pgDataDir),
        bench: process.cpuUsage(),
      });
      const cpu0 = cpu();
      const t0 = performance.now();
      let next = 0;
      const ids: string[] = [];
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (next < QUEUE_RATE_EXPORTS) {
            next++;
            ids.push(await post(oneRowQuery, `rate ${next}`));
          }
        }),
      );
      const postedMs = performance.now() - t0;
      for (;;) {
        const [row] = await sql<
          { n: number }[]
        >`SELECT count(*)::int AS n FROM analytics_exports WHERE id = ANY(${ids}::uuid[]) AND status IN ('queued', 'running')`;
        if (row!.n === 0) break;
        // Coarse on purpose: the poll competes with the exports for the same 2 cores. At most
        // 0.1 s late on a run of 10 s or more (and dbSpanSeconds is exact).
        await sleep(100);
      }
      const ms = performance.now() - t0;
      const cpu1 = cpu();
      const [failed] = await sql<
        { n: number }[]
      >`SELECT count(*)::int AS n FROM analytics_exports WHERE id = ANY(${ids}::uuid[]) AND status <> 'complete'`;
      if (failed!.n > 0) throw new Error(`${failed!.n} one-row exports did not complete`);
      const [span] = await sql<{ ms: number; run_ms: number; p50_run_ms: number }[]>`
        SELECT extract(epoch FROM max(finished) - min(created)) * 1000 AS ms,
               avg(extract(epoch FROM finished - started) * 1000) AS run_ms,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished - started) * 1000) AS p50_run_ms
          FROM analytics_exports WHERE id = ANY(${ids}::uuid[])`;
      (results.queue as Record<string, unknown>).oneRowExports = {
        exports: ids.length,
        seconds: round(ms / 1000, 2),
        perSecond: round(ids.length / (ms / 1000)),
        postingSeconds: round(postedMs / 1000, 2),
        dbSpanSeconds: round(Number(span!.ms) / 1000, 2),
        // Claim to complete, per export: what one worker slot spends on each.
        runMsMean: round(Number(span!.run_ms), 2),
        runMsP50: round(Number(span!.p50_run_ms), 2),
        // Where the 2 cores went meanwhile (seconds); the bench's own share includes the polling.
        cpuSeconds: {
          api: round(cpu1.api - cpu0.api, 2),
          worker: round(cpu1.worker - cpu0.worker, 2),
          postgres: round(cpu1.postgres - cpu0.postgres, 2),
          s3rver: round(cpu1.s3 - cpu0.s3, 2),
          bench: round((cpu1.bench.user + cpu1.bench.system - cpu0.bench.user - cpu0.bench.system) / 1e6, 2),
        },
      };
      log(
        `${ids.length} one-row exports in ${round(ms / 1000, 2)} s (${round(ids.length / (ms / 1000))}/s; POSTs took ${round(postedMs / 1000, 2)} s); CPU s: ${JSON.stringify((results.queue as { oneRowExports: { cpuSeconds: unknown } }).oneRowExports.cpuSeconds)}`,
      );
    }
  }

  // ------------------------------------------------------------ 2. API
  if (ONLY.has('api')) {
    const completeId = latencyIds[0]!;
    const cannon = async (options: autocannon.Options) => {
      const result = await autocannon({ connections: 10, duration: 10, ...options, headers: { ...headers, ...(options.headers ?? {}) } });
      const non2xx = result.non2xx + result.errors + result.timeouts;
      return {
        connections: options.connections ?? 10,
        seconds: options.duration ?? 10,
        ...(options.overallRate ? { targetRps: options.overallRate } : {}),
        requests: result.requests.total,
        rps: round(result.requests.average),
        p50Ms: result.latency.p50,
        p90Ms: result.latency.p90,
        p99Ms: result.latency.p99,
        maxMs: result.latency.max,
        errorsOrNon2xx: non2xx,
      };
    };
    const getUrl = `${baseUrl}/analytics/exports/${completeId}/`;
    const apiFigures: Record<string, unknown> = {};
    await cannon({ url: getUrl, duration: 3 }); // warm-up
    // The target's figure: 500 requests a second, evenly spaced (bench/open-loop.ts).
    apiFigures.getAt500 = await openLoop({ url: getUrl, headers, rate: 500, seconds: 10 });
    // autocannon's own rate limit, for comparison: each second's 500 sent in a burst by 10 connections.
    apiFigures.getAt500Bursts = await cannon({ url: getUrl, overallRate: 500 });
    apiFigures.getMax = await cannon({ url: getUrl });
    log(
      `GET at 500/s evenly: ${JSON.stringify(apiFigures.getAt500)}; in bursts (autocannon): ${JSON.stringify(apiFigures.getAt500Bursts)}; unthrottled: ${JSON.stringify(apiFigures.getMax)}`,
    );
    // POST creates real exports (of the one-row query); the worker runs them meanwhile, as it would.
    apiFigures.postMax = await cannon({
      url: `${baseUrl}/analytics/export`,
      method: 'POST',
      body: JSON.stringify({ name: 'autocannon', query: oneRowQuery }),
    });
    log(`POST unthrottled: ${JSON.stringify(apiFigures.postMax)}`);
    apiFigures.apiPeakRssMiB = round(peakRssMiB(api.child.pid!));
    results.api = apiFigures;
  }

  if (PG_STATEMENTS) {
    const top = await sql<{ ms: number; calls: number; query: string }[]>`
      SELECT round(total_exec_time::numeric, 1)::float AS ms, calls::int, left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 160) AS query
        FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25`;
    for (const s of top) log(`pg ${String(s.ms).padStart(9)} ms ${String(s.calls).padStart(7)} calls  ${s.query}`);
  }
  (results.machine as Record<string, unknown>).loadAverageAtEnd = os.loadavg().map((n) => round(n, 2));
  results.durationSeconds = Math.round((Date.now() - started) / 1000);
  results.date = new Date().toISOString();
  results.large = LARGE;
  if (PARTIAL) results.partial = [...ONLY];
  // --large measures everything the default run does and 10M rows too: its file is results.json as well.
  await fs.writeFile(path.join(root, 'bench', PARTIAL ? 'results-partial.json' : 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  printTable(results);
});

// ---------------------------------------------------------------- helpers

async function seedDevices(sql: postgres.Sql, customerId: string): Promise<string[]> {
  const [space] = await sql<{ id: string }[]>`INSERT INTO spaces (customer_id, name) VALUES (${customerId}, 'Bench building') RETURNING id`;
  const devices = await sql<{ id: string }[]>`
    INSERT INTO devices (customer_id, space_id, name, kind)
    SELECT ${customerId}, ${space!.id}, 'Bench device ' || lpad(n::text, 4, '0'), 'sensor' FROM generate_series(1, ${DEVICES}::int) AS n ORDER BY n
    RETURNING id`;
  return devices.map((d) => d.id);
}

/** Readings for minutes [from, to) of every device and metric, in parallel slices as demo-data writes them. */
async function seedReadings(sql: postgres.Sql, deviceIds: string[], from: number, to: number): Promise<void> {
  await seedBenchReadings(
    sql,
    { deviceIds, metrics: METRICS, start: START, fromMinute: from, toMinute: to },
    { writers: 4, chunkMinutes: 5000 },
  );
}

async function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const versions = async (name: string) =>
    JSON.parse(await fs.readFile(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version as string;
  const psql = await new Promise<string>((resolve) => {
    const child = spawn('psql', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', () => resolve('absent'));
    child.on('exit', () => resolve(out.trim()));
  });
  return {
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()}`,
    // Other work on the machine skews every figure: the 1/5/15-minute load averages at the start (and end).
    loadAverageAtStart: os.loadavg().map((n) => round(n, 2)),
    node: process.version,
    psql,
    packages: Object.fromEntries(
      await Promise.all(
        [
          'graphile-worker',
          'pg',
          'pg-copy-streams',
          '@aws-sdk/lib-storage',
          '@aws-sdk/client-s3',
          'hono',
          '@hono/node-server',
          'postgres',
          's3rver',
          'autocannon',
        ].map(async (name) => [name, await versions(name)] as const),
      ),
    ),
  };
}

function printTable(r: Record<string, any>): void {
  const lines: string[] = [];
  const m = r.machine;
  lines.push('', `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, Postgres ${m.postgres}`);
  lines.push(`Settings: ${JSON.stringify(r.settings)}`, '');
  const row = (name: string, value: string, target: string, ok: boolean | undefined) =>
    lines.push(`${name.padEnd(46)} ${value.padEnd(28)} ${target.padEnd(14)} ${ok === undefined ? '' : ok ? 'ok' : 'SHORT'}`);
  row('Figure', 'Measured', 'Target', undefined);
  const z = r.zeroConfig;
  if (z) {
    const t = ZERO_CONFIG_TARGETS;
    row(`Zero-config export, ${z.rows} rows (${round(z.bytes / 1048576)} MiB)`, `${round(z.exportMs / 1000, 2)} s`, '', undefined);
    row(
      '  psql COPY of its SELECT / of the table',
      `${round(z.selectCopyMs / 1000, 2)} s / ${round(z.tableCopyMs / 1000, 2)} s`,
      '',
      undefined,
    );
    row('  export / psql COPY of its SELECT', `${z.exportToCopy}x`, `<= ${t.exportToCopy}x`, z.exportToCopy <= t.exportToCopy);
    row(
      '  its SELECT / COPY device_readings',
      `${z.selectToTableCopy}x`,
      `<= ${t.selectToTableCopy}x`,
      z.selectToTableCopy <= t.selectToTableCopy,
    );
    row(
      '  floor: COPY of its rows stored / the table',
      `${z.storedRowsToTableCopy}x (${round(z.storedRowsCopyMs / 1000, 2)} s)`,
      '',
      undefined,
    );
    row(
      '  service peak RSS (embedded S3 process)',
      `${z.servicePeakRssMiB} MiB${z.s3PeakRssMiB === undefined ? '' : ` (${z.s3PeakRssMiB} MiB)`}`,
      `<= ${t.servicePeakRssMiB} MiB`,
      z.servicePeakRssMiB <= t.servicePeakRssMiB,
    );
  }
  for (const label of ['2M', '10M']) {
    const e = r.exportPath?.[label];
    if (!e) continue;
    row(
      `Export ${label} rows (${round(e.bytes / 1048576)} MiB): end to end`,
      `${round(e.exportMs / 1000, 2)} s (${e.exportMiBps} MiB/s)`,
      '',
      undefined,
    );
    row(
      `  COPY alone (psql) / upload alone (s3rver)`,
      `${round(e.copyAloneMs / 1000, 2)} s / ${round(e.uploadAloneMs / 1000, 2)} s`,
      '',
      undefined,
    );
    row(`  ratio to the slower`, `${e.ratio}x`, '<= 1.15x', e.ratio <= 1.15);
    row(`  worker peak RSS`, `${e.workerPeakRssMiB} MiB`, '< 160 MiB', e.workerPeakRssMiB < 160);
  }
  if (r.exportPath?.rssGrowth2Mto10M !== undefined) {
    row('Peak RSS growth 2M -> 10M', `${round(r.exportPath.rssGrowth2Mto10M * 100)} %`, '< 10 %', r.exportPath.rssGrowth2Mto10M < 0.1);
  }
  if (r.api) {
    const g = r.api.getAt500;
    row(
      'GET /analytics/exports/{id}/ at 500 req/s, even',
      `p50 ${g.p50Ms} ms, p99 ${g.p99Ms} ms (${g.rps}/s)`,
      'p99 < 10 ms',
      g.p99Ms < 10 && g.rps >= 490 && g.errorsOrNon2xx === 0,
    );
    const gb = r.api.getAt500Bursts;
    row('  same, autocannon bursts (10 connections)', `p50 ${gb.p50Ms} ms, p99 ${gb.p99Ms} ms (${gb.rps}/s)`, '', undefined);
    const gm = r.api.getMax;
    row(`GET unthrottled, ${gm.connections} connections`, `${gm.rps}/s, p50 ${gm.p50Ms}, p99 ${gm.p99Ms} ms`, '', undefined);
    const p = r.api.postMax;
    row(`POST /analytics/export, ${p.connections} connections`, `${p.rps}/s, p50 ${p.p50Ms}, p99 ${p.p99Ms} ms`, '', undefined);
  }
  if (r.queue) {
    const q = r.queue.postToRunning;
    row(`POST to running (${q.exports} exports, idle)`, `p50 ${q.p50Ms} ms, p99 ${q.p99Ms} ms`, 'p50 < 25 ms', q.p50Ms < 25);
    const o = r.queue.oneRowExports;
    row(`${o.exports} one-row exports end to end`, `${o.perSecond}/s (${o.seconds} s)`, '>= 100/s', o.perSecond >= 100);
  }
  lines.push('', `Total ${r.durationSeconds} s; figures in bench/results${r.partial ? '-partial' : ''}.json`, '');
  process.stdout.write(lines.join('\n'));
}
