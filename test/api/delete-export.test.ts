import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { JobHelpers } from 'graphile-worker';
import { sweepOrphanedObjects } from '../../tasks/sweep-orphaned-objects';
import { expireExportsTask } from '../../tasks/expire-exports';
import { createTestApi } from '../support/api';
import { markComplete, markFailed } from '../support/exports';
import { createCustomerWithQuery, insertExport } from '../support/fixtures';
import { objectsOf } from '../support/objects';

/**
 * Deleting an export and its files (DELETE /analytics/exports/{id}/ and retention share one
 * function): no database connection is held while S3 is called, every object under the export's
 * prefix goes, and when S3 fails half-way the export is gone and the orphan sweep finishes.
 */

// Two connections: a DELETE that held one across its S3 calls would starve everyone else.
const api = await createTestApi({ poolSize: 2 });
const { sql } = api.db;
const { bucket } = api;
const { user, queryId, customerId } = await createCustomerWithQuery(sql);
const newExport = () => insertExport(sql, user.id, queryId, { customerScopes: [customerId] });

/**
 * S3 as the API sees it, with the requests whose command name matches `commands` delayed by
 * `delayMs` before they are sent, or failed. The server is the real s3rver; only the client's
 * timing and faults are injected.
 */
let fault: { commands: RegExp; delayMs?: number; fail?: boolean } | undefined;
api.context.s3.middlewareStack.add(
  (next, context) => async (args) => {
    if (fault?.commands.test(String(context.commandName))) {
      if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault!.delayMs));
      if (fault.fail) throw Object.assign(new Error('injected storage fault'), { name: 'InjectedFault' });
    }
    return next(args);
  },
  { step: 'initialize', name: 'testFaults' },
);

async function putUnder(id: string, name: string) {
  await bucket.client.send(new PutObjectCommand({ Bucket: bucket.config.bucket, Key: `anx_export_${id}/${name}`, Body: 'a\n1\n' }));
}

describe('DELETE /analytics/exports/{id}/', () => {
  test('removes every object under the export’s prefix, what failed attempts left included', async () => {
    const id = await newExport();
    await markComplete(sql, bucket, id, 'a\n1\n');
    await putUnder(id, '0-deadbeef/user_x.csv');
    assert.equal((await objectsOf(bucket.client, bucket.config.bucket, id)).length, 2);
    assert.equal((await api.request('DELETE', `/analytics/exports/${id}/`, { key: user.apiKey })).status, 204);
    assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, id), []);
  });

  test('ten slow DELETEs hold no database connection while S3 answers: the pool of two still serves a GET at once', async (t) => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = await newExport();
      await markComplete(sql, bucket, id, 'a\n1\n');
      ids.push(id);
    }
    const other = await newExport();
    fault = { commands: /^(ListObjectsV2|DeleteObject)Command$/, delayMs: 1500 };
    try {
      const deletes = ids.map((id) => api.request('DELETE', `/analytics/exports/${id}/`, { key: user.apiKey }));
      // Every DELETE is past its database work and waiting on S3.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const started = Date.now();
      const get = await api.request('GET', `/analytics/exports/${other}/`, { key: user.apiKey });
      const getMs = Date.now() - started;
      t.diagnostic(`GET answered in ${getMs} ms while ten DELETEs waited on S3`);
      assert.equal(get.status, 200);
      assert.ok(getMs < 1000, `GET took ${getMs} ms: a DELETE held a connection across S3`);
      const responses = await Promise.all(deletes);
      assert.deepEqual(
        responses.map((r) => r.status),
        ids.map(() => 204),
      );
    } finally {
      fault = undefined;
    }
    for (const id of ids) assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, id), []);
  });

  test('when S3 refuses the object deletes, the export is still gone and the orphan sweep removes its files', async () => {
    const id = await newExport();
    const key = await markComplete(sql, bucket, id, 'a\n1\n');
    fault = { commands: /^DeleteObjectCommand$/, fail: true };
    try {
      assert.equal((await api.request('DELETE', `/analytics/exports/${id}/`, { key: user.apiKey })).status, 204);
    } finally {
      fault = undefined;
    }
    assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${id}`).length, 0, 'the export is gone');
    assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, id), [key], 'its file is left, owned by nobody');
    const swept = await sweepOrphanedObjects(api.context, 0);
    assert.ok(swept.deleted >= 1);
    assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, id), []);
  });
});

describe('retention deletes the same way', () => {
  test('an expired failed export goes with everything its attempts left', async () => {
    const id = await newExport();
    await markFailed(sql, id);
    await putUnder(id, '1-0badf00d/user_x.csv');
    await sql`UPDATE analytics_exports SET created = now() - interval '31 days' WHERE id = ${id}`;
    await expireExportsTask(api.context)({}, {} as JobHelpers);
    assert.equal((await sql`SELECT 1 FROM analytics_exports WHERE id = ${id}`).length, 0);
    assert.deepEqual(await objectsOf(bucket.client, bucket.config.bucket, id), []);
  });
});
