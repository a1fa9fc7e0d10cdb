import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { describe, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createS3Client, payloadIntegrityNeedsNoHash } from '../../src/storage/s3-client';
import { createTestBucket, type RelayedPut, startS3Relay } from '../support/s3';

/**
 * Uploads are signed without a hash of their bytes (SigV4's UNSIGNED-PAYLOAD) over TLS and on
 * the loopback interface, and with it over plain http to any other host. Seen on the wire: a
 * relay in front of the harness's S3 server records each PUT's x-amz-content-sha256 and the
 * SHA-256 of the body it carried.
 */

const puts: RelayedPut[] = [];
const bucket = await createTestBucket();
const { port: relayPort } = await startS3Relay(bucket.config.endpoint!, { onPut: (put) => puts.push(put), allInterfaces: true });

/** An address of this machine that is not loopback, if it has one. */
function externalAddress(): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return undefined;
}

async function uploadThrough(host: string, key: string): Promise<{ body: Buffer; puts: RelayedPut[] }> {
  puts.length = 0;
  const s3 = createS3Client({ ...bucket.config, endpoint: `http://${host}:${relayPort}` });
  try {
    // Two parts of a multipart upload, then one PutObject.
    const body = randomBytes(6 * 1024 * 1024);
    await new Upload({ client: s3, params: { Bucket: bucket.config.bucket, Key: key, Body: body }, partSize: 5 * 1024 * 1024 }).done();
    await s3.send(new PutObjectCommand({ Bucket: bucket.config.bucket, Key: `${key}.small`, Body: 'small' }));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket.config.bucket, Key: key }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body), 'the object is what was sent');
    return { body, puts: [...puts] };
  } finally {
    s3.destroy();
  }
}

describe('payload signing of uploads', () => {
  test('which endpoints send uploads unsigned', () => {
    assert.equal(payloadIntegrityNeedsNoHash(undefined), true, 'AWS: https');
    assert.equal(payloadIntegrityNeedsNoHash('https://minio.internal:9000'), true);
    assert.equal(payloadIntegrityNeedsNoHash('http://127.0.0.1:4569'), true);
    assert.equal(payloadIntegrityNeedsNoHash('http://localhost:4569'), true);
    assert.equal(payloadIntegrityNeedsNoHash('http://[::1]:4569'), true);
    assert.equal(payloadIntegrityNeedsNoHash('http://minio:9000'), false);
    assert.equal(payloadIntegrityNeedsNoHash('http://10.0.0.5:9000'), false);
  });

  test('on the loopback interface every PUT goes as UNSIGNED-PAYLOAD, and the server accepts it', async () => {
    const { puts: seen } = await uploadThrough('127.0.0.1', 'loopback.bin');
    assert.equal(seen.length, 3, 'two parts and one PutObject');
    for (const put of seen) assert.equal(put.contentSha256, 'UNSIGNED-PAYLOAD', put.url);
  });

  test('over plain http to another host every PUT carries the SHA-256 of its body', async (t) => {
    const host = externalAddress();
    if (host === undefined) {
      // Without a second interface the rule itself is what the test above checks.
      t.diagnostic('this machine has no non-loopback IPv4 address');
      assert.equal(payloadIntegrityNeedsNoHash('http://192.0.2.1:9000'), false);
      return;
    }
    const { puts: seen } = await uploadThrough(host, 'remote.bin');
    assert.equal(seen.length, 3);
    for (const put of seen) assert.equal(put.contentSha256, put.bodySha256, put.url);
  });
});
