import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Upload } from '@aws-sdk/lib-storage';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { generateReadings } from '../src/demo/readings';
import { compileExportQuery } from '../src/exports/compile-query';
import { createTestDatabase } from './support/database';
import { createCustomer, createDevice, createPartner, createQuery, createUser, insertExport } from './support/fixtures';
import { createTestBucket } from './support/s3';
import { spawnWorker, waitForFinalExport, waitForLog, workerEnvironment } from './support/worker';

const ROWS_DAYS = Number(process.env.BENCH_DAYS ?? '69.4445');
const database = await createTestDatabase();
const { sql } = database;
const bucket = await createTestBucket();
const customerId = await createCustomer(sql, await createPartner(sql));
const user = await createUser(sql, 'customer', { customerId });
const devices: string[] = [];
for (let i = 0; i < 10; i++) devices.push(await createDevice(sql, customerId));
const start = new Date('2026-01-01T00:00:00Z');
const end = new Date(start.getTime() + Math.round(ROWS_DAYS * 1440) * 60_000);
const t0 = Date.now();
const rows = await generateReadings(sql, { deviceIds: devices, metrics: ['active_power', 'temperature'], start, end, step: '1m' });
console.log(`generated ${rows} rows in ${Date.now() - t0} ms`);
await sql`VACUUM ANALYZE device_readings`;
const queryId = await createQuery(sql, user.id, { metrics: ['active_power', 'temperature'], start: start.toISOString(), end: end.toISOString() });

const hwm = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

test('bench', async () => {
  const worker = spawnWorker(workerEnvironment(database, bucket, { LOG_LEVEL: 'info', EXPORT_PART_SIZE_MIB: '8', EXPORT_UPLOAD_QUEUE_SIZE: '4', WORKER_CONCURRENCY: '1' }));
  await waitForLog(worker, (l) => l.msg === 'ready');
  const idle = hwm(worker.child.pid!);
  const id = await insertExport(sql, user.id, queryId);
  let peak = 0;
  const timer = setInterval(() => { try { peak = Math.max(peak, hwm(worker.child.pid!)); } catch {} }, 200);
  const final = await waitForFinalExport(sql, id, 600_000);
  clearInterval(timer);
  peak = Math.max(peak, hwm(worker.child.pid!));
  const line = worker.logs.find((l) => l.msg === 'export complete')!;
  console.log(`export: ${final.number_of_rows} rows, ${final.total_bytes} bytes in ${line.duration_ms} ms; worker VmHWM idle ${idle.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB`);
  worker.kill('SIGTERM');
  await worker.exited;

  const select = await compileExportQuery(sql, id);
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  let t = Date.now();
  let bytes = 0;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  for await (const chunk of client.query(copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv, HEADER)`))) bytes += (chunk as Buffer).length;
  await client.query('COMMIT');
  console.log(`COPY alone: ${bytes} bytes in ${Date.now() - t} ms`);
  await client.end();

  const total = final.total_bytes!;
  const block = Buffer.alloc(64 * 1024, 'a');
  async function* body() {
    let left = total;
    while (left > 0) { const n = Math.min(left, block.length); left -= n; yield n === block.length ? block : block.subarray(0, n); }
  }
  t = Date.now();
  await new Upload({ client: bucket.client, params: { Bucket: bucket.config.bucket, Key: 'upload-alone.csv', Body: Readable.from(body()) }, partSize: 8 * 1024 * 1024, queueSize: 4 }).done();
  console.log(`upload alone: ${total} bytes in ${Date.now() - t} ms`);
});
