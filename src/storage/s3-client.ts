import { S3Client } from '@aws-sdk/client-s3';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import type { S3Config } from '../config';

/** Between two tries of one request: 1 s, doubling, at most 20 s (9 tries span about 91 s). */
export function retryDelayMs(nextAttempt: number): number {
  return Math.min(20_000, 1000 * 2 ** Math.max(0, nextAttempt - 2));
}

/**
 * The S3 client every part of the service uses, set up for AWS and for S3-compatible servers alike.
 * With `maxAttempts`, each request that fails for a transient reason (unreachable, reset, 5xx,
 * throttled) is tried that many times in all, retryDelayMs apart; without, the SDK's default
 * (3 tries within a second or so), for requests a client waits on.
 */
export function createS3Client(config: S3Config & { endpoint: string | undefined }, options: { maxAttempts?: number } = {}): S3Client {
  const client = new S3Client({
    ...(options.maxAttempts ? { retryStrategy: new ConfiguredRetryStrategy(options.maxAttempts, retryDelayMs) } : {}),
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    // Static keys when configured (the embedded server's are put in the config by the service);
    // otherwise the SDK's default chain.
    credentials:
      config.accessKeyId && config.secretAccessKey
        ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey }
        : undefined,
    // Without these the SDK sends aws-chunked bodies with trailing checksums, which S3-compatible
    // servers such as s3rver store verbatim, framing included.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // The SDK waits forever by default: a black-holed endpoint would hold an export "running"
    // (with a live heartbeat) for good. An idle socket (not a slow upload) fails the request.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
  });
  if (payloadIntegrityNeedsNoHash(config.endpoint)) sendUploadsUnsigned(client);
  return client;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Over TLS (AWS itself, or any https endpoint) the connection already protects every byte, and
 * on the loopback interface (the embedded S3 server) nothing is in between: a SHA-256 of each
 * part in the signature adds nothing there but CPU (about 0.5 s of the worker's for every 300 MB).
 * A plain http endpoint elsewhere keeps signed payloads.
 */
export function payloadIntegrityNeedsNoHash(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return true;
  const url = new URL(endpoint);
  return url.protocol === 'https:' || LOOPBACK_HOSTS.has(url.hostname);
}

const UNSIGNED_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);

/**
 * SigV4's UNSIGNED-PAYLOAD for the requests that carry an export's bytes: the signer takes the
 * x-amz-content-sha256 header as it finds it instead of hashing the body. Only uploads: download
 * links are signed elsewhere (the presigner, which never hashes a body).
 */
function sendUploadsUnsigned(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (UNSIGNED_COMMANDS.has(context.commandName ?? '') && request.headers) {
        request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    },
    { step: 'build', name: 'unsignedUploadPayload' },
  );
}
