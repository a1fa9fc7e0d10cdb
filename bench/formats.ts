import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { findFreePort } from '../src/embedded/free-port';
import { copyStatement, DEFAULT_ENCODING, type ExportEncoding } from '../src/exports/formats';
import { compileExportQuery } from '../src/exports/load-export-query';
import { deleteObject } from '../src/storage/objects';
import { createCustomer, createPartner, createQuery, createUser, insertExport } from '../test/support/fixtures';
import {
  BENCH_ROOT as root,
  benchDirectory,
  log,
  MEMORY_SETTINGS,
  onCleanup,
  passedOn,
  round,
  runBench,
  sleep,
  startService,
  stopChild,
  waitFor,
} from './processes';
import { cpuSeconds, peakRssMiB, resetPeakRss } from './proc-stats';
import { seedReadings, startBenchDatabase, startBenchS3 } from './stack';

/**
 * `npm run bench:formats`: the 2M-row export (100 devices x 4 metrics x 5,000 minutes) in each
 * format and compression, run by the service's worker process (bin/service, ROLE=worker) from an
 * embedded Postgres into a local s3rver, one export at a time. For each: the time from insert to
 * complete (against plain CSV), the object's bytes, the worker's peak RSS (VmHWM, reset before
 * each export) and its CPU seconds. Writes bench/results-formats.json and prints a Markdown table.
 * Everything it started is stopped at the end. Not part of `npm test`.
 */

const BUCKET = 'bench-formats';
const DEVICES = 100;
const METRICS = ['active_power', 'energy', 'illuminance', 'temperature'];
/** BENCH_FORMATS_MINUTES: fewer minutes of readings (a quick check of the bench itself). */
const MINUTES = Number(process.env.BENCH_FORMATS_MINUTES ?? '5000');
const START = new Date('2026-01-01T00:00:00Z');
const REPEAT = Number(process.env.BENCH_REPEAT ?? '1');
const RSS_LIMIT_MIB = 200;

const COMBINATIONS: Array<Partial<ExportEncoding> & { label: string }> = [
  { label: 'csv' },
  { label: 'csv + formula_guard', formulaGuard: true },
  { label: 'csv.gz', compression: 'gzip' },
  { label: 'csv.zst', compression: 'zstd' },
  { label: 'jsonl', format: 'jsonl' },
  { label: 'jsonl.gz', format: 'jsonl', compression: 'gzip' },
  { label: 'jsonl.zst', format: 'jsonl', compression: 'zstd' },
  { label: 'parquet (snappy)', format: 'parquet' },
  { label: 'parquet (gzip)', format: 'parquet', compression: 'gzip' },
  { label: 'parquet (zstd)', format: 'parquet', compression: 'zstd' },
];

/** BENCH_FORMATS=parquet,zst: only the files whose label contains one of these (plain csv always runs: the reference). */
const ONLY = process.env.BENCH_FORMATS?.split(',').filter(Boolean);
const CHOSEN = COMBINATIONS.filter((c) => c.label === 'csv' || !ONLY || ONLY.some((part) => c.label.includes(part)));

/** A COPY read to the end and thrown away, with the worker's float setting: seconds and bytes. */
async function copyAlone(databaseUrl: string, statement: string): Promise<{ seconds: number; bytes: number }> {
  const client = new pg.Client({ connectionString: databaseUrl, options: '-c extra_float_digits=1' });
  await client.connect();
  try {
    const t0 = performance.now();
    let bytes = 0;
    for await (const chunk of client.query(copyTo(statement))) bytes += (chunk as Buffer).length;
    return { seconds: round((performance.now() - t0) / 1000, 2), bytes };
  } finally {
    await client.end();
  }
}

/**
 * The alternative to writing JSON in the worker: Postgres building each line (json_build_object;
 * non-finite values as null). Timed to compare with COPY's binary rows, which the worker decodes.
 */
const postgresJsonLines = (select: string) =>
  `COPY (SELECT json_build_object('timestamp', q."timestamp", 'device_id', q.device_id, 'device_name', q.device_name,
          'space_id', q.space_id, 'space_name', q.space_name, 'metric', q.metric,
          'value', CASE WHEN q.value IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE q.value END)::text
     FROM (${select}) AS q) TO STDOUT`;

await runBench('bench:formats', async () => {
  const tmp = await benchDirectory(path.join(root, 'bench', 'tmp', `formats-${process.pid}`));
  const { databaseUrl, sql } = await startBenchDatabase(tmp);
  const { client: s3Client, serviceEnv: s3Env } = await startBenchS3(tmp, BUCKET);

  // The 2M readings, written in parallel slices with the triggers off, as the main bench does.
  const customerId = await createCustomer(sql, await createPartner(sql));
  const user = await createUser(sql, 'customer', { customerId });
  const devices = await sql<{ id: string }[]>`
    INSERT INTO devices (customer_id, name) SELECT ${customerId}, 'Bench device ' || n FROM generate_series(1, ${DEVICES}::int) AS n
    RETURNING id`;
  const seeded = performance.now();
  await seedReadings(
    sql,
    { deviceIds: devices.map((d) => d.id), metrics: METRICS, start: START, fromMinute: 0, toMinute: MINUTES },
    { writers: 4, chunkMinutes: MINUTES },
  );
  log(`seeded 2M readings in ${round((performance.now() - seeded) / 1000)} s`);
  const queryId = await createQuery(
    sql,
    user.id,
    { metrics: METRICS, start: START.toISOString(), end: new Date(START.getTime() + MINUTES * 60_000).toISOString() },
    { customerScopes: [customerId] },
  );

  const worker = startService({
    DATABASE_URL: databaseUrl,
    ...s3Env,
    ROLE: 'worker',
    // The worker's ops server (/healthz, /metrics) on a free port, not the default 3000.
    PORT: String(await findFreePort()),
    LOG_LEVEL: 'info',
    // bin/service's memory settings, when set here (for before/after figures).
    ...passedOn(MEMORY_SETTINGS),
  });
  onCleanup(() => stopChild(worker));
  await waitFor('worker', () => worker.output().includes('"msg":"ready"'), { ms: 300_000, watching: [worker] });
  const pid = worker.child.pid!;

  const results: Array<Record<string, unknown>> = [];
  const copies: Record<string, { seconds: number; bytes: number }> = {};
  for (const { label, ...encoding } of CHOSEN) {
    for (let run = 0; run < REPEAT; run++) {
      await resetPeakRss(pid);
      const cpu0 = cpuSeconds(pid);
      const t0 = performance.now();
      const id = await insertExport(sql, user.id, queryId, { name: `bench ${label}`, customerScopes: [customerId], ...encoding });
      let row: { status: string; number_of_rows: number; total_bytes: number; object_key: string; errors: unknown } | undefined;
      for (;;) {
        [row] = await sql<NonNullable<typeof row>[]>`
          SELECT status, number_of_rows::float8 AS number_of_rows, total_bytes::float8 AS total_bytes, object_key, errors
            FROM analytics_exports WHERE id = ${id}`;
        if (row!.status === 'complete' || row!.status === 'failed') break;
        await sleep(50);
      }
      const ms = performance.now() - t0;
      if (row!.status !== 'complete') throw new Error(`${label} failed: ${JSON.stringify(row!.errors)}`);
      const result = {
        label,
        run: run + 1,
        seconds: round(ms / 1000, 2),
        rows: row!.number_of_rows,
        bytes: row!.total_bytes,
        workerPeakRssMiB: round(peakRssMiB(pid)),
        workerCpuSeconds: round(cpuSeconds(pid) - cpu0, 2),
      };
      results.push(result);
      log(JSON.stringify(result));
      if (label === 'csv' && run === 0) {
        const select = await compileExportQuery(sql, id);
        copies['COPY csv'] = await copyAlone(databaseUrl, copyStatement(select, DEFAULT_ENCODING));
        copies['COPY binary'] = await copyAlone(databaseUrl, copyStatement(select, { ...DEFAULT_ENCODING, format: 'jsonl' }));
        copies['COPY of json_build_object lines'] = await copyAlone(databaseUrl, postgresJsonLines(select));
        log(JSON.stringify(copies));
      }
      await deleteObject(s3Client, BUCKET, row!.object_key);
    }
  }

  const best = (label: string) => Math.min(...results.filter((r) => r.label === label).map((r) => r.seconds as number));
  const csvSeconds = best('csv');
  const csvBytes = results.find((r) => r.label === 'csv')!.bytes as number;
  const lines = [
    '| file | time (s) | vs plain CSV | bytes | vs plain CSV | worker peak RSS (MiB) | worker CPU (s) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const { label } of CHOSEN) {
    const runs = results.filter((r) => r.label === label);
    const bytes = runs[0]!.bytes as number;
    const rss = Math.max(...runs.map((r) => r.workerPeakRssMiB as number));
    const cpu = Math.min(...runs.map((r) => r.workerCpuSeconds as number));
    lines.push(
      `| ${label} | ${best(label)} | ${round(best(label) / csvSeconds, 2)}x | ${bytes.toLocaleString('en')} | ${round(bytes / csvBytes, 3)}x | ${rss} | ${cpu} |`,
    );
  }
  const overLimit = results.filter((r) => /parquet|zst/.test(r.label as string) && (r.workerPeakRssMiB as number) >= RSS_LIMIT_MIB);
  const summary = {
    date: new Date().toISOString(),
    machine: { cores: os.availableParallelism(), loadAverage: os.loadavg().map((n) => round(n, 2)), node: process.version },
    rows: results[0]!.rows,
    results,
    copyAlone: copies,
    parquetAndZstdUnder200MiB: overLimit.length === 0,
  };
  await fs.writeFile(path.join(root, 'bench', 'results-formats.json'), `${JSON.stringify(summary, null, 2)}\n`);
  lines.push('', '| COPY alone, read and discarded | time (s) | bytes |', '| --- | ---: | ---: |');
  for (const [name, copy] of Object.entries(copies)) lines.push(`| ${name} | ${copy.seconds} | ${copy.bytes.toLocaleString('en')} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (overLimit.length > 0) log(`over ${RSS_LIMIT_MIB} MiB: ${overLimit.map((r) => r.label).join(', ')}`);
  return overLimit.length === 0 ? 0 : 2;
});
