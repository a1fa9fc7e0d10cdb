import fs from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import * as v from 'valibot';
import { environmentSchema } from '../src/config';
import type { DevFile } from '../src/dev-file';
import { compileExportQuery } from '../src/exports/load-export-query';
import { createQuery } from '../test/support/fixtures';
import { requestJson } from './http-client';
import { BENCH_ROOT, log, onCleanup, round, runCommand, sleep, startService, stopChild, waitFor } from './processes';
import { cpuSeconds, peakRssMiB, postgresCpuSeconds, resetPeakRss } from './proc-stats';

/**
 * The bench's "zero-config" part: the service as a newcomer starts it (bin/service, no database
 * and no S3 configured: the embedded Postgres and S3, demo data), 14 devices x 100 days x 1
 * minute of one metric (2,016,000 readings) added with the CLI's demo-data, then
 * - one raw export of all of them through the API against psql's COPY of the export's own SELECT
 *   on the same database, and the service's peak RSS during the export;
 * - the export's SELECT against a plain COPY of the table holding exactly those rows (the demo
 *   readings are deleted first), both through psql;
 * - the floor under that ratio: a COPY of the export's rows stored as it writes them (a table made
 *   from its SELECT, in its order), which costs no join, formatting or sort, only the reading and
 *   the output of seven columns per row.
 */

export const ZERO_CONFIG_TARGETS = { exportToCopy: 1.25, selectToTableCopy: 1.6, servicePeakRssMiB: 160 } as const;

const DEVICES = 14;
const DAYS = 100;
const METRIC = 'temperature';

/**
 * Runs in the bench's tmp directory, `repeat` times (the best of each figure counts); the
 * service gets serviceEnv too (profiling flags).
 */
export async function measureZeroConfig(options: { tmp: string; repeat: number; serviceEnv: Record<string, string> }) {
  const dataDir = path.join(options.tmp, 'zero-config');
  await fs.mkdir(dataDir, { recursive: true });
  // The embedded Postgres runs as the postgres user when the bench runs as root: it must enter DATA_DIR.
  await fs.chmod(dataDir, 0o755);
  const service = startService({ ...options.serviceEnv, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' });
  onCleanup(() => stopChild(service));
  await waitFor('zero-config service', () => service.output().includes('"msg":"ready"'), { ms: 180_000, watching: [service] });
  const dev = JSON.parse(await fs.readFile(path.join(dataDir, 'dev.json'), 'utf8')) as DevFile;
  const s3Line = service
    .output()
    .split('\n')
    .find((l) => l.includes('"msg":"embedded S3 started"'));
  const s3Pid = s3Line ? (JSON.parse(s3Line) as { pid?: number }).pid : undefined;
  log(`zero-config service up (pid ${service.child.pid}, embedded S3 pid ${s3Pid ?? 'in-process'})`);

  const sql = postgres(dev.database_url, { max: 2, onnotice: () => {} });
  onCleanup(() => sql.end({ timeout: 5 }));
  const [customer] = await sql<{ id: string }[]>`SELECT id FROM customers ORDER BY created LIMIT 1`;
  const [admin] = await sql<{ id: string }[]>`SELECT id FROM users WHERE account_type = 'admin' ORDER BY created LIMIT 1`;

  // The readings, as a user would add them: the CLI's demo-data.
  let started = performance.now();
  const cliOut = path.join(options.tmp, 'zero-config-demo-data.json');
  await runCommand(
    'sh',
    [
      '-c',
      `node ${path.join(BENCH_ROOT, 'dist/cli/index.js')} demo-data --customer ${customer!.id} --devices ${DEVICES} --days ${DAYS} --step 1m --metrics ${METRIC} > ${cliOut}`,
    ],
    { env: { DATABASE_URL: dev.database_url } },
  );
  const seeded = JSON.parse(await fs.readFile(cliOut, 'utf8')) as { devices: string[]; readings: number; start: string; end: string };
  log(`zero-config: ${seeded.readings} readings written by demo-data in ${round((performance.now() - started) / 1000)} s`);
  // The table holds exactly the export's rows, so that a COPY of the table reads the same rows.
  await sql`DELETE FROM device_readings WHERE NOT (device_id = ANY (${seeded.devices}::uuid[]))`;
  await sql`VACUUM ANALYZE device_readings`;
  const queryId = await createQuery(
    sql,
    admin!.id,
    { metrics: [METRIC], devices: seeded.devices, start: seeded.start, end: seeded.end },
    { customerScopes: [customer!.id] },
  );

  const headers = { authorization: `Bearer ${dev.api_key}`, 'content-type': 'application/json' };
  // The settings of the worker's COPY sessions that change the SELECT's output or its plan.
  const workMemMiB = v.parse(environmentSchema.EXPORT_WORK_MEM_MIB, process.env.EXPORT_WORK_MEM_MIB);
  const psqlEnv = { PGOPTIONS: `-c extra_float_digits=1${workMemMiB === undefined ? '' : ` -c work_mem=${workMemMiB}MB`}` };
  const psqlCopy = (what: string) =>
    runCommand(
      'psql',
      [dev.database_url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy ${what} to '/dev/null' with (format csv, header)`],
      {
        env: psqlEnv,
      },
    );
  const runs: Array<{
    exportMs: number;
    selectCopyMs: number;
    tableCopyMs: number;
    storedRowsCopyMs: number;
    servicePeakRssMiB: number;
    s3PeakRssMiB?: number;
    /** CPU seconds during the export (service, embedded S3, Postgres) and during psql's COPY of its SELECT (Postgres). */
    cpuS: { service: number; s3?: number; postgres: number; postgresForSelectCopy: number };
  }> = [];
  const pgDataDir = path.join(dataDir, 'postgres');
  const cpuNow = () => ({
    service: cpuSeconds(service.child.pid!),
    s3: s3Pid ? cpuSeconds(s3Pid) : 0,
    postgres: postgresCpuSeconds(pgDataDir),
  });
  let rows = 0;
  let bytes = 0;
  for (let i = 0; i < options.repeat; i++) {
    await resetPeakRss(service.child.pid!);
    if (s3Pid) await resetPeakRss(s3Pid);
    const cpu0 = cpuNow();
    started = performance.now();
    const created = await requestJson('POST', `${dev.base_url}/analytics/export`, headers, { name: `zero-config ${i}`, query: queryId });
    if (created.status !== 201) throw new Error(`POST /analytics/export: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.id as string;
    for (;;) {
      const { body } = await requestJson('GET', `${dev.base_url}/analytics/exports/${id}/`, headers);
      if (body.status === 'failed') throw new Error(`export ${id} failed: ${JSON.stringify(body.errors)}`);
      if (body.status === 'complete') {
        rows = body.number_of_rows as number;
        bytes = body.total_bytes as number;
        break;
      }
      await sleep(50);
    }
    const exportMs = performance.now() - started;
    const cpu1 = cpuNow();
    const servicePeakRssMiB = peakRssMiB(service.child.pid!);
    const s3PeakRssMiB = s3Pid ? peakRssMiB(s3Pid) : undefined;
    if (rows !== seeded.readings) throw new Error(`the export has ${rows} rows, the table ${seeded.readings}`);

    const select = (await compileExportQuery(sql, id)).replace(/\s+/g, ' ');
    const pgBeforeSelect = postgresCpuSeconds(pgDataDir);
    const selectCopyMs = await psqlCopy(`(${select})`);
    const postgresForSelectCopy = round(postgresCpuSeconds(pgDataDir) - pgBeforeSelect, 2);
    const tableCopyMs = await psqlCopy('device_readings');
    if (i === 0) {
      await sql.unsafe(`CREATE UNLOGGED TABLE bench_export_rows AS ${select}`);
      // Hint bits and the visibility map set, as the readings' are: the COPY only reads.
      await sql`VACUUM ANALYZE bench_export_rows`;
    }
    const storedRowsCopyMs = await psqlCopy('bench_export_rows');
    runs.push({
      exportMs: round(exportMs),
      selectCopyMs: round(selectCopyMs),
      tableCopyMs: round(tableCopyMs),
      storedRowsCopyMs: round(storedRowsCopyMs),
      servicePeakRssMiB: round(servicePeakRssMiB),
      ...(s3PeakRssMiB === undefined ? {} : { s3PeakRssMiB: round(s3PeakRssMiB) }),
      cpuS: {
        service: round(cpu1.service - cpu0.service, 2),
        ...(s3Pid ? { s3: round(cpu1.s3 - cpu0.s3, 2) } : {}),
        postgres: round(cpu1.postgres - cpu0.postgres, 2),
        postgresForSelectCopy,
      },
    });
    log(
      `zero-config run ${i + 1}: export ${round(exportMs / 1000, 2)} s, psql COPY of its SELECT ${round(selectCopyMs / 1000, 2)} s, psql COPY of the table ${round(tableCopyMs / 1000, 2)} s, of the export's rows stored ${round(storedRowsCopyMs / 1000, 2)} s, service peak RSS ${round(servicePeakRssMiB)} MiB${s3PeakRssMiB === undefined ? '' : `, embedded S3 ${round(s3PeakRssMiB)} MiB`}; CPU during the export: ${JSON.stringify(runs.at(-1)!.cpuS)}`,
    );
  }
  await sql`DROP TABLE IF EXISTS bench_export_rows`;
  // Best of the runs for each, so that a noisy run does not decide a ratio.
  const best = (key: 'exportMs' | 'selectCopyMs' | 'tableCopyMs' | 'storedRowsCopyMs') => Math.min(...runs.map((r) => r[key]));
  return {
    rows,
    bytes,
    exportMs: best('exportMs'),
    selectCopyMs: best('selectCopyMs'),
    tableCopyMs: best('tableCopyMs'),
    exportToCopy: round(best('exportMs') / best('selectCopyMs'), 3),
    selectToTableCopy: round(best('selectCopyMs') / best('tableCopyMs'), 3),
    storedRowsCopyMs: best('storedRowsCopyMs'),
    storedRowsToTableCopy: round(best('storedRowsCopyMs') / best('tableCopyMs'), 3),
    servicePeakRssMiB: Math.max(...runs.map((r) => r.servicePeakRssMiB)),
    ...(s3Pid === undefined ? {} : { s3PeakRssMiB: Math.max(...runs.map((r) => r.s3PeakRssMiB ?? 0)) }),
    runs,
  };
}
