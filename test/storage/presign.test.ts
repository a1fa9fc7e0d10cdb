import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { exportObjectKey } from '../../src/exports/naming';
import { presignDownload, presignSlowly } from '../../src/storage/objects';
import { createS3Client } from '../../src/storage/s3-client';

/**
 * presignDownload signs a cached template request instead of running the SDK's middleware stack
 * per call (a bench finding); the URL must be the one getSignedUrl gives, byte for byte.
 */

const clients = {
  'path-style endpoint (s3rver, MinIO)': createS3Client({
    endpoint: 'http://127.0.0.1:4569',
    bucket: 'analytics-exports',
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    forcePathStyle: true,
  }),
  'AWS, virtual-hosted': new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } }),
  'AWS, bucket with dots (path-style by the SDK)': new S3Client({
    region: 'eu-central-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  }),
};
const buckets: Record<string, string> = { 'AWS, bucket with dots (path-style by the SDK)': 'exports.example.com' };

describe('presignDownload', () => {
  for (const [name, client] of Object.entries(clients)) {
    it(`gives getSignedUrl's URL: ${name}`, async () => {
      const bucket = buckets[name] ?? 'analytics-exports';
      const now = new Date('2026-03-01T12:34:56Z');
      const keys = [
        exportObjectKey('0b5f9d5e-8a43-4a4e-9d1b-2f6f5b3c1d2e', 2, '6c1e2f3a-4b5c-4d6e-8f70-819203a4b5c6'),
        'a/b/c.csv',
        // Keys that need escaping take getSignedUrl itself; they must come out the same too.
        'with space/ümlaut+plus&amp=?.csv',
        "quote'(star)*!.csv",
      ];
      for (const key of keys) {
        const fast = await presignDownload(client, bucket, key, now);
        assert.equal(fast.url, await presignSlowly(client, bucket, key, now), key);
        assert.equal(fast.expires.toISOString(), '2026-03-01T13:34:56.000Z');
      }
      // A later call signs anew: another date, another signature.
      const later = await presignDownload(client, bucket, keys[0]!, new Date('2026-03-01T12:35:56Z'));
      assert.equal(later.url, await presignSlowly(client, bucket, keys[0]!, new Date('2026-03-01T12:35:56Z')));
      assert.notEqual(later.url, (await presignDownload(client, bucket, keys[0]!, now)).url);
    });
  }
});

describe('url_expires', () => {
  it('is the expiry the signature states: X-Amz-Date + X-Amz-Expires, to the millisecond', async () => {
    const client = clients['path-style endpoint (s3rver, MinIO)'];
    // A signing time with milliseconds: the signature keeps whole seconds only.
    for (const now of [new Date('2026-03-01T12:34:56.999Z'), new Date('2026-03-01T12:34:56.001Z'), new Date()]) {
      const { url, expires } = await presignDownload(client, 'analytics-exports', 'a/b.csv', now);
      const query = new URL(url).searchParams;
      const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(query.get('X-Amz-Date')!)!;
      const signedAt = Date.UTC(+date[1]!, +date[2]! - 1, +date[3]!, +date[4]!, +date[5]!, +date[6]!);
      assert.equal(expires.getTime(), signedAt + Number(query.get('X-Amz-Expires')) * 1000, now.toISOString());
    }
  });
});
