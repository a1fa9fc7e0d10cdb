import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
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
export async function startRefusingS3(
  status: number,
  code: string,
): Promise<{ endpoint: string; requests: string[]; close(): Promise<void> }> {
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

/**
 * Slows every UploadPart the client sends by `delayMs`: an export's upload, and with it (through
 * backpressure) its COPY, then runs for a predictable while, so a test can act on it mid-upload
 * however fast or loaded the machine is.
 */
export function paceUploadParts(client: S3Client, delayMs: number): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand') await new Promise((resolve) => setTimeout(resolve, delayMs));
      return next(args);
    },
    { step: 'initialize', name: 'testPaceUploadParts' },
  );
}

/**
 * A TCP relay in front of an S3 server that a test can cut: while cut, every connection, open or
 * new, is reset, as in a network outage, and the server behind it keeps its state (stopping
 * s3rver instead loses what it held of uploads under way).
 */
export async function startCuttableRelay(targetPort: number): Promise<{ endpoint: string; cut(): void; restore(): void }> {
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = net.connect(targetPort, '127.0.0.1');
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', close).on('close', close);
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      cut = false;
    },
  };
}

/** A PUT that passed through startS3Relay: its path, its x-amz-content-sha256 and the SHA-256 of its body. */
export interface RelayedPut {
  url: string;
  contentSha256: string | undefined;
  bodySha256: string;
}

/**
 * An HTTP relay in front of an S3 server, headers untouched (the signature covers them). With
 * `delayPutMs` it holds every PUT (PutObject, UploadPart) that long before passing it on: uploads
 * of worker processes, which a test cannot hook like paceUploadParts, then last a predictable
 * while. With `onPut` it reports each PUT as it ends. `allInterfaces` listens beyond loopback.
 */
export async function startS3Relay(
  targetEndpoint: string,
  options: { delayPutMs?: number; onPut?: (put: RelayedPut) => void; allInterfaces?: boolean } = {},
): Promise<{ endpoint: string; port: number }> {
  const target = new URL(targetEndpoint);
  const server = http.createServer((request, response) => {
    if (request.method === 'PUT' && options.onPut) {
      const hash = createHash('sha256');
      request.on('data', (chunk: Buffer) => hash.update(chunk));
      request.on('end', () =>
        options.onPut?.({
          url: request.url ?? '',
          contentSha256: request.headers['x-amz-content-sha256'] as string | undefined,
          bodySha256: hash.digest('hex'),
        }),
      );
    }
    const forward = () => {
      if (request.destroyed) return;
      const upstream = http.request(
        { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        },
      );
      upstream.on('error', () => response.destroy());
      // A client gone mid-request (a worker killed during a part) must not leave the upstream
      // request waiting for the rest of its body: the S3 server would hold that connection, and
      // this process with it, until its request timeout (5 minutes).
      request.on('close', () => {
        if (!request.complete) upstream.destroy();
      });
      request.pipe(upstream);
    };
    if (request.method === 'PUT' && options.delayPutMs) setTimeout(forward, options.delayPutMs);
    else forward();
  });
  server.listen(0, options.allInterfaces ? '0.0.0.0' : '127.0.0.1');
  await once(server, 'listening');
  after(() => new Promise<void>((resolve) => server.close(() => resolve()) && server.closeAllConnections()));
  const port = (server.address() as AddressInfo).port;
  return { endpoint: `http://127.0.0.1:${port}`, port };
}

/** startS3Relay holding every PUT for `delayMs`. */
export function startPacedS3Relay(targetEndpoint: string, delayMs: number): Promise<{ endpoint: string }> {
  return startS3Relay(targetEndpoint, { delayPutMs: delayMs });
}
