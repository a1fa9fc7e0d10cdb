import { isThrottlingError, isTransientError } from '@smithy/core/retry';

/** A storage request failed: S3 unreachable, a 5xx, a refused request. `cause` is what the SDK threw. */
export class StorageError extends Error {
  override name = 'StorageError';
  constructor(override readonly cause: unknown) {
    super(describe(cause));
  }
}

/** What a StorageError's cause says, for the caller to decide whether trying again can help. */
export interface StorageFailureFacts {
  /** The HTTP status S3 answered with; absent when it did not answer. */
  httpStatus?: number;
  /** The SDK's error name (e.g. AccessDenied, NoSuchBucket), when it is more than "Error". */
  errorName?: string;
  /** The system error code (e.g. ECONNREFUSED), when there is one. */
  causeCode?: string;
  /** lib-storage refused an upload of more than 10,000 parts. */
  tooManyParts: boolean;
  /**
   * S3 answered and refused (3xx/4xx) for good: not throttling (429, SlowDown), a request timeout
   * (408, RequestTimeout) or a clock skew the SDK corrects. Otherwise the failure may pass: an
   * unreachable or reset connection, a timeout without answer, a 5xx.
   */
  refused: boolean;
}

interface SdkError {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** lib-storage's own refusal of an upload of more than 10,000 parts. */
const TOO_MANY_PARTS = /^Exceeded \d+ parts in multipart upload/;

export function storageFailureFacts(error: StorageError): StorageFailureFacts {
  const cause = (error.cause ?? {}) as SdkError;
  const httpStatus = typeof cause.$metadata?.httpStatusCode === 'number' ? cause.$metadata.httpStatusCode : undefined;
  const refused =
    httpStatus !== undefined &&
    httpStatus >= 300 &&
    httpStatus < 500 &&
    httpStatus !== 408 &&
    cause.name !== 'RequestTimeTooSkewed' &&
    !isThrottlingError(cause as never) &&
    !isTransientError(cause as never);
  return {
    ...(httpStatus !== undefined ? { httpStatus } : {}),
    ...(typeof cause.name === 'string' && cause.name !== 'Error' ? { errorName: cause.name } : {}),
    ...(typeof cause.code === 'string' ? { causeCode: cause.code } : {}),
    tooManyParts: typeof cause.message === 'string' && TOO_MANY_PARTS.test(cause.message),
    refused,
  };
}

function describe(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // Node's happy-eyeballs connect failure is an AggregateError without a message of its own.
  if (cause instanceof AggregateError && !cause.message) {
    return cause.errors.map((error: unknown) => (error instanceof Error ? error.message : String(error))).join('; ') || cause.name;
  }
  return cause.message || (cause as { code?: string }).code || cause.name;
}
