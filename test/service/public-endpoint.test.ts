import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config';
import { startService } from '../../src/service';
import { createTestDatabase } from '../support/database';
import { markComplete } from '../support/exports';
import { createCustomerWithQuery, insertExport } from '../support/fixtures';
import { createTestBucket } from '../support/s3';

/**
 * S3_PUBLIC_ENDPOINT: the service talks to S3 at one address and signs download links for the
 * one clients use (in compose, http://minio:9000 and http://localhost:9000). Here the service
 * uses 127.0.0.1 and the links name localhost: the same s3rver, reached by another name.
 */

const database = await createTestDatabase();
const bucket = await createTestBucket();
const { customerId, user, queryId } = await createCustomerWithQuery(database.sql);
const internal = new URL(bucket.config.endpoint!);
assert.equal(internal.hostname, '127.0.0.1');
const publicEndpoint = `http://localhost:${internal.port}`;

async function serviceWith(extra: Record<string, string>) {
  const config = loadConfig({
    DATABASE_URL: database.url,
    S3_ENDPOINT: bucket.config.endpoint!,
    S3_BUCKET: bucket.config.bucket,
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    ROLE: 'api',
    PORT: '0',
    ...extra,
  });
  const service = await startService(config, pino({ level: 'silent' }));
  after(() => service.stop());
  return service;
}

async function downloadUrl(baseUrl: string, id: string): Promise<string> {
  const response = await fetch(`${baseUrl}/analytics/exports/${id}/`, { headers: { authorization: `Bearer ${user.apiKey}` } });
  assert.equal(response.status, 200);
  return ((await response.json()) as { url: string }).url;
}

describe('S3_PUBLIC_ENDPOINT', () => {
  test('download links name the public endpoint and open there; without it they name S3_ENDPOINT', async () => {
    const id = await insertExport(database.sql, user.id, queryId, { customerScopes: [customerId] });
    const csv = 'timestamp,device_id\n2026-01-01T00:00:00.000000Z,x\n';
    await markComplete(database.sql, bucket, id, csv);

    const withPublic = await serviceWith({ S3_PUBLIC_ENDPOINT: publicEndpoint });
    const url = await downloadUrl(withPublic.baseUrl!, id);
    assert.ok(url.startsWith(`${publicEndpoint}/${bucket.config.bucket}/`), url);
    const download = await fetch(url);
    assert.equal(download.status, 200);
    assert.equal(await download.text(), csv);
    // The signature covers the host, so a link must be signed for the address it is used at
    // (s3rver does not check it; S3 and MinIO refuse a link sent to another host).
    assert.equal(new URL(url).searchParams.get('X-Amz-SignedHeaders'), 'host');

    const without = await serviceWith({});
    assert.ok((await downloadUrl(without.baseUrl!, id)).startsWith(`${bucket.config.endpoint}/${bucket.config.bucket}/`));
  });

  test('must be an http(s) URL', () => {
    assert.throws(
      () => loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:9000', S3_BUCKET: 'b-x', S3_PUBLIC_ENDPOINT: 'minio:9000' }),
      /S3_PUBLIC_ENDPOINT/,
    );
  });
});
