import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { serve } from '@hono/node-server';
import { createApp } from '../../src/api/app';
import { createTestApi } from '../support/api';
import { ROOT } from '../support/built';
import { testEnvironment } from '../support/environment';
import { seedCustomerReadings } from '../support/fixtures';
import { startTestWorker } from '../support/worker';

/**
 * A client generated from the served /openapi.json by tools nobody on this project wrote:
 * openapi-typescript with its default settings writes the types, tsc checks the client
 * (test/openapi-client/contract-flow.ts: the contract's flow with its example bodies verbatim,
 * sent by openapi-fetch) against them, and the client then runs against the service over HTTP,
 * with a worker, until its export is downloaded and deleted.
 */

const run = promisify(execFile);
const EXAMPLE_QUERY_ID = '7ca7297f-1de1-4799-8eeb-a7b4d557850c';

const api = await createTestApi();
const { sql } = api.db;
const seeded = await seedCustomerReadings(sql, 2, 1);
// The query the contract's example body names, visible to its customer's user.
await sql`UPDATE analytics_queries SET id = ${EXAMPLE_QUERY_ID}, customer_scopes = ARRAY[${seeded.customerId}]::uuid[] WHERE id = ${seeded.queryId}`;
await startTestWorker(api.db, api.bucket);

const server = serve({ fetch: createApp(api.context).fetch, hostname: '127.0.0.1', port: 0 });
after(() => server.close());
await once(server, 'listening');
const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/** A directory of its own holding the client, the generated types and the project's node_modules. */
const dir = await fs.mkdtemp(path.join(testEnvironment.tmpDir, 'openapi-client-'));
await fs.symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
await fs.writeFile(
  path.join(dir, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'Bundler',
      lib: ['ES2023', 'DOM'],
      types: ['node'],
      strict: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: true,
      noEmit: true,
    },
    files: ['contract-flow.ts', 'api.ts'],
  }),
);
await fs.copyFile(path.join(ROOT, 'test/openapi-client/contract-flow.ts'), path.join(dir, 'contract-flow.ts'));

test('openapi-typescript (default settings) generates types from the served document', async () => {
  await run(path.join(ROOT, 'node_modules/.bin/openapi-typescript'), [`${baseUrl}/openapi.json`, '--output', path.join(dir, 'api.ts')], {
    cwd: dir,
  });
  const types = await fs.readFile(path.join(dir, 'api.ts'), 'utf8');
  assert.match(types, /"\/analytics\/export": \{/);
  assert.match(types, /"\/analytics\/exports\/\{id\}\/": \{/);
});

test('the contract’s flow, its example bodies verbatim, typechecks against the generated types', async () => {
  const { stdout } = await run(path.join(ROOT, 'node_modules/.bin/tsc'), ['--project', dir], { cwd: dir }).catch(
    (error: { stdout?: string }) => {
      assert.fail(`tsc found errors:\n${error.stdout}`);
    },
  );
  assert.equal(stdout, '');
});

test('the generated client runs the flow against the service: created, complete, downloaded, listed, deleted', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'contract-flow.ts'], {
    cwd: dir,
    env: { ...process.env, BASE_URL: baseUrl, API_KEY: seeded.user.apiKey },
  }).catch((error: { stdout?: string; stderr?: string }) => assert.fail(`the client failed:\n${error.stderr}\n${error.stdout}`));
  const seen = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  assert.equal(seen.rows, seeded.rows);
  assert.equal(seen.devices, 2);
  assert.equal(seen.deleted, 204);
  const [left] = await sql`SELECT count(*)::int AS n FROM analytics_exports WHERE id = ${seen.id as string}`;
  assert.equal(left!.n, 0, 'the export the client deleted is gone');
});
