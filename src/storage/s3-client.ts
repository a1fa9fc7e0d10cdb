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
  return new S3Client({
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
}
