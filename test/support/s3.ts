import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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

/**
 * An S3 peer that answers HeadBucket 200 and every other request with `status` and S3's XML error
 * `code`, after reading the request's body. For the error classes s3rver never
 * produces; a fake network peer, not a mock of the SDK.
 */
export async function startRefusingS3(status: number, code: string): Promise<{ endpoint: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    request.resume();
    request.on('end', () => {
      if (request.method === 'HEAD') return void response.writeHead(200).end();
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>refused by the test peer</Message><RequestId>test</RequestId></Error>`;
      response.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) }).end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()) && server.closeAllConnections()),
  };
}
