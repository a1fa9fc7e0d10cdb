import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { pino } from 'pino';
import { ORPHAN_GRACE_MS, sweepOrphanedObjects } from '../../tasks/sweep-orphaned-objects';
import { EXPORT_PREFIX } from '../../src/exports/naming';
import { deleteObjects, listObjectPages } from '../../src/storage/objects';
import { createTestApi } from '../support/api';
import { markComplete, markFailed, markRunning } from '../support/exports';
import { createCustomerWithQuery, insertExport } from '../support/fixtures';

/**
 * The orphan sweep against the real s3rver: everything under `anx_export_` that no complete
 * export owns and no running attempt may still complete with goes, once older than the grace
 * period; one object that cannot be deleted does not stop the others.
 */

const logLines: Array<Record<string, unknown>> = [];
const api = await createTestApi({ logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) }) });
const { sql } = api.db;
const { bucket } = api;
const { user, queryId } = await createCustomerWithQuery(sql);

async function put(key: string) {
  await bucket.client.send(new PutObjectCommand({ Bucket: bucket.config.bucket, Key: key, Body: 'a\n1\n' }));
  return key;
}

async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of listObjectPages(bucket.client, bucket.config.bucket, '')) keys.push(...page.map((object) => object.key));
  return keys.sort();
}

async function emptyBucket() {
  await deleteObjects(bucket.client, bucket.config.bucket, await bucketKeys());
}

describe('sweep_orphaned_objects', () => {
  test('removes what no export owns; keeps complete exports’ objects, running attempts’ objects and everything outside the export prefix', async () => {
    await emptyBucket();
    const complete = await insertExport(sql, user.id, queryId);
    const owned = await markComplete(sql, bucket, complete, 'a\n1\n');
    const earlierAttempt = await put(`anx_export_${complete}/0-00000000/user_${user.id}.csv`);
    const running = await insertExport(sql, user.id, queryId);
    await markRunning(sql, running);
    const runningNow = await put(`anx_export_${running}/1-11111111/user_${user.id}.csv`);
    const failed = await insertExport(sql, user.id, queryId);
    await markFailed(sql, failed);
    const failedLeftover = await put(`anx_export_${failed}/1-22222222/user_${user.id}.csv`);
    const deletedExport = await put(`anx_export_${randomUUID()}/1-33333333/user_${user.id}.csv`);
    const notAnExportKey = await put(`${EXPORT_PREFIX}garbage.csv`);
    const outside = await put('reports/keep-me.csv');

    const result = await sweepOrphanedObjects(api.context, 0);
    assert.deepEqual(await bucketKeys(), [owned, runningNow, outside].sort());
    assert.deepEqual(result, { listed: 6, deleted: 4, failed: 0 }, 'only the export prefix is listed');
    for (const gone of [earlierAttempt, failedLeftover, deletedExport, notAnExportKey]) assert.ok(!(await bucketKeys()).includes(gone));
  });

  test('leaves objects younger than the grace period (an hour by default)', async () => {
    await emptyBucket();
    const fresh = await put(`anx_export_${randomUUID()}/1-44444444/user_${user.id}.csv`);
    assert.equal(ORPHAN_GRACE_MS, 3_600_000);
    const result = await sweepOrphanedObjects(api.context, ORPHAN_GRACE_MS);
    assert.deepEqual(result, { listed: 1, deleted: 0, failed: 0 });
    assert.deepEqual(await bucketKeys(), [fresh]);
  });

  test('an object that cannot be deleted is logged and counted, and the others still go', async () => {
    await emptyBucket();
    const stuck = await put(`anx_export_${randomUUID()}/1-55555555/user_${user.id}.csv`);
    const others = [];
    for (let i = 0; i < 3; i++) others.push(await put(`anx_export_${randomUUID()}/1-6666666${i}/user_${user.id}.csv`));
    // A refusal from S3 for that one key, injected in the client; the server is the real s3rver.
    const refuse = 'testRefuseOneDelete';
    api.context.s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteObjectCommand' && (args.input as { Key?: string }).Key === stuck) {
          throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
        }
        return next(args);
      },
      { step: 'initialize', name: refuse },
    );
    try {
      const result = await sweepOrphanedObjects(api.context, 0);
      assert.deepEqual(result, { listed: 4, deleted: 3, failed: 1 });
    } finally {
      api.context.s3.middlewareStack.remove(refuse);
    }
    assert.deepEqual(await bucketKeys(), [stuck]);
    assert.ok(logLines.some((line) => line.object_key === stuck && /could not delete/.test(String(line.msg))));
  });
});
