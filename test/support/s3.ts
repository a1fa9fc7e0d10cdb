import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { after } from 'node:test';
import type { S3Config } from '../../src/config';
import { startEmbeddedS3, type RunningS3 } from '../../src/embedded/s3';
import { createS3Client } from '../../src/storage/s3-client';
import { testEnvironment } from './environment';

export interface TestBucket {
  config: S3Config;
  client: S3Client;
}

function s3Config(endpoint: string, bucket: string): S3Config {
  return { endpoint, bucket, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true };
}

/** A new empty bucket on the harness's s3rver, for this test file alone. */
export async function createTestBucket(endpoint = testEnvironment.s3Endpoint): Promise<TestBucket> {
  const config = s3Config(endpoint, `t-${randomBytes(6).toString('hex')}`);
  const client = createS3Client(config);
  await client.send(new CreateBucketCommand({ Bucket: config.bucket }));
  after(() => client.destroy());
  return { config, client };
}

/**
 * An s3rver of the test's own, which the test may stop (and start again on the same port and
 * directory) to see what storage faults do.
 */
export async function startPrivateS3(): Promise<RunningS3 & { directory: string; restart(): Promise<void> }> {
  const directory = path.join(testEnvironment.tmpDir, `s3-${randomBytes(6).toString('hex')}`);
  let server = await startEmbeddedS3({ directory, buckets: [] });
  const port = server.port;
  const handle = {
    directory,
    port,
    endpoint: server.endpoint,
    stop: () => server.stop(),
    async restart() {
      server = await startEmbeddedS3({ directory, buckets: [], port });
    },
  };
  after(() => server.stop());
  return handle;
}
