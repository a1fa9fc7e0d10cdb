import fs from 'node:fs/promises';
import { findFreePort } from './free-port';
import { installMultipartUploads, type MultipartStore } from './s3-multipart';

/**
 * An S3-compatible server (s3rver) inside the calling process: the tests' and the bench's server,
 * and the body of the process `npm start` runs it in (s3-process.ts). Objects are files under
 * `directory`, so they survive a restart.
 * s3rver does not verify signatures and has no AbortMultipartUpload (it answers 405).
 */

/** s3rver's built-in account: the service signs its requests to the embedded server with these keys. */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface RunningS3 {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export async function startEmbeddedS3(options: { directory: string; buckets: string[]; port?: number }): Promise<RunningS3> {
  await fs.mkdir(options.directory, { recursive: true });
  const port = options.port ?? (await findFreePort());
  // Loaded on demand: the container image leaves the embedded servers out (see Dockerfile).
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({
    address: '127.0.0.1',
    port,
    silent: true,
    directory: options.directory,
    // Path-style only: virtual-host buckets would need DNS for *.localhost.
    vhostBuckets: false,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  installMultipartUploads((server as unknown as { store: MultipartStore }).store);
  await server.run();
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop() {
      // Keep-alive sockets of SDK clients would hold close() open until they time out.
      server.httpServer?.closeAllConnections();
      stopped ??= server.close();
      return stopped;
    },
  };
}
