import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseCsv } from '../support/csv';
import { createTestDatabase } from '../support/database';
import { testEnvironment } from '../support/environment';
import { createQuery, READINGS_START, seedCustomerReadings } from '../support/fixtures';
import { startServiceProcess, waitForReady, type ServiceProcess } from '../support/service-process';
import { waitFor } from '../support/wait';

/**
 * With no S3 configured the service runs its embedded S3 server in a child process of its own,
 * off the event loop of the worker that uploads to it, and no way the service ends leaves that
 * process behind. The database is the harness's, so only S3 is embedded here.
 */

const database = await createTestDatabase();
const seeded = await seedCustomerReadings(database.sql, 1, 1);
// The same readings, through a query the customer's user sees (scoped to their customer).
const queryId = await createQuery(
  database.sql,
  seeded.user.id,
  {
    metrics: ['active_power', 'temperature'],
    start: READINGS_START.toISOString(),
    end: new Date(READINGS_START.getTime() + 86_400_000).toISOString(),
  },
  { customerScopes: [seeded.customerId] },
);

/** A process that still runs (a zombie waiting to be reaped has ended). */
function isRunning(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    return readFileSync(stat, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

function parentOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
}

function logLine(service: ServiceProcess, msg: string): Record<string, unknown> {
  const line = service
    .stdout()
    .split('\n')
    .find((l) => l.includes(`"msg":"${msg}"`));
  assert.ok(line, `the service logged "${msg}":\n${service.stdout()}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** The service with the embedded S3 server; returns it with the S3 server's pid. */
async function startWithEmbeddedS3(name: string): Promise<{ service: ServiceProcess; s3Pid: number; baseUrl: string }> {
  const service = startServiceProcess({ DATABASE_URL: database.url, DATA_DIR: path.join(testEnvironment.tmpDir, name), PORT: '0' });
  await waitForReady(service);
  const s3Pid = logLine(service, 'embedded S3 started').pid as number;
  assert.equal(typeof s3Pid, 'number');
  assert.notEqual(s3Pid, service.child.pid, 'S3 is not served by the service process itself');
  assert.ok(isRunning(s3Pid));
  assert.equal(parentOf(s3Pid), service.child.pid, 'the S3 server is a child of the service');
  return { service, s3Pid, baseUrl: logLine(service, 'API listening').baseUrl as string };
}

describe('the embedded S3 server in a process of its own', { concurrency: false }, () => {
  test('stores the exports, and stops with the service on SIGTERM', async () => {
    const { service, s3Pid, baseUrl } = await startWithEmbeddedS3('embedded-s3-sigterm');
    const headers = { authorization: `Bearer ${seeded.user.apiKey}`, 'content-type': 'application/json' };
    const created = await fetch(`${baseUrl}/analytics/export`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'through the embedded S3 process', query: queryId }),
    });
    const { id, ...rest } = (await created.json()) as { id: string };
    assert.equal(created.status, 201, JSON.stringify(rest));
    const done = await waitFor(
      async () => {
        const body = (await (await fetch(`${baseUrl}/analytics/exports/${id}/`, { headers })).json()) as Record<string, unknown>;
        return body.status === 'complete' || body.status === 'failed' ? body : undefined;
      },
      60_000,
      'the export to finish',
      100,
    );
    assert.equal(done.status, 'complete', JSON.stringify(done.errors));
    const download = await fetch(done.url as string);
    assert.equal(download.status, 200);
    const rows = parseCsv(await download.text());
    assert.equal(rows[0]!.join(','), 'timestamp,device_id,device_name,space_id,space_name,metric,value');
    assert.equal(rows.length - 1, seeded.rows);

    service.child.kill('SIGTERM');
    assert.equal(await service.exited, 0);
    await waitFor(() => (isRunning(s3Pid) ? undefined : true), 10_000, 'the S3 process to end');
  });

  test('outlives a Ctrl-C to the process group until the service stops it (SIGINT)', async () => {
    const { service, s3Pid } = await startWithEmbeddedS3('embedded-s3-sigint');
    const endpoint = logLine(service, 'embedded S3 started').endpoint as string;
    // A terminal's Ctrl-C reaches both: the S3 server still answers while the service drains.
    process.kill(s3Pid, 'SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.ok(isRunning(s3Pid), 'SIGINT alone does not stop the S3 server');
    assert.equal((await fetch(`${endpoint}/`)).status, 200, 'and it still serves');
    // To the service alone, not its process group: the service must stop its child itself.
    service.child.kill('SIGINT');
    assert.equal(await service.exited, 0);
    await waitFor(() => (isRunning(s3Pid) ? undefined : true), 10_000, 'the S3 process to end');
  });

  test('ends by itself when the service dies without stopping it (SIGKILL)', async () => {
    const { service, s3Pid } = await startWithEmbeddedS3('embedded-s3-sigkill');
    service.child.kill('SIGKILL');
    await service.exited;
    await waitFor(() => (isRunning(s3Pid) ? undefined : true), 10_000, 'the orphaned S3 process to end');
  });
});
