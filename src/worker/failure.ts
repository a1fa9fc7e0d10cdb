import { ExportQueryError } from '../exports/compile-query';
import type { ExportErrors } from '../db/statements/export-attempts';
import { StorageError, storageFailureFacts } from '../storage/errors';
import { CopyQueryError, ObjectTooLarge } from './copy-to-object';
import { ExportDatabaseBehind, ExportDatabaseUnavailable } from './export-database';

/**
 * What a failed attempt means for the export, by kind:
 *   - the query (a Postgres error of the COPY, its statement timeout, an invalid definition):
 *     failed at once, running it again would fail again;
 *   - storage refusing the request for good (403 denied, no such bucket, other 4xx, more than
 *     10,000 parts): failed at once with its own code, as every attempt would be refused alike;
 *   - storage failing for now (unreachable, reset, 5xx, throttled, timed out): retried with backoff;
 *   - the export database (EXPORT_DATABASE_URL) unreachable or too far behind the primary:
 *     retried with backoff, with codes of their own;
 *   - anything else (the database connection lost, a bug): retried as `internal`.
 * The codes are EXPORT_ERROR_CODES (src/db/schema.ts), which ExportErrors' `code` is typed by.
 */
export interface Failure {
  retry: boolean;
  errors: ExportErrors;
}

const QUERY_CANCELED = '57014';

export function classifyFailure(error: unknown): Failure {
  if (error instanceof ExportQueryError) return { retry: false, errors: { code: 'query_error', message: error.message } };
  if (error instanceof ObjectTooLarge)
    return { retry: false, errors: { code: 'too_large', message: error.message, max_bytes: error.maxBytes } };
  if (error instanceof CopyQueryError) {
    const cause = error.cause;
    const details = {
      sqlstate: cause.code,
      ...(cause.detail ? { detail: cause.detail } : {}),
      ...(cause.hint ? { hint: cause.hint } : {}),
    };
    // By SQLSTATE, never by the message (its language is the server's lc_messages). The worker
    // never cancels its own COPY with a cancel request (it closes the connection), so a cancelled
    // COPY is the statement timeout (or an operator's pg_cancel_backend, which is final too).
    if (cause.code === QUERY_CANCELED) return { retry: false, errors: { code: 'timeout', message: cause.message, ...details } };
    // Class 08 (connection) and 57P (shutdown) are the server going away, not the query.
    if (cause.code?.startsWith('08') || cause.code?.startsWith('57P')) {
      return { retry: true, errors: { code: 'internal', message: cause.message, ...details } };
    }
    return { retry: false, errors: { code: 'query_error', message: cause.message, ...details } };
  }
  if (error instanceof StorageError) return storageFailure(error);
  if (error instanceof ExportDatabaseBehind) {
    return {
      retry: true,
      errors: {
        code: 'export_database_behind',
        message: error.message,
        max_lag_s: error.maxLagMs / 1000,
        wal_bytes_behind: error.bytesBehind,
      },
    };
  }
  if (error instanceof ExportDatabaseUnavailable) {
    const sqlstate = (error.cause as { code?: unknown } | undefined)?.code;
    return {
      retry: true,
      errors: { code: 'export_database_unavailable', message: error.message, ...(typeof sqlstate === 'string' ? { cause: sqlstate } : {}) },
    };
  }
  return { retry: true, errors: { code: 'internal', message: error instanceof Error ? error.message : String(error) } };
}

/**
 * Permanent: S3 answered and refused for good (storageFailureFacts). Transient: anything else, an
 * unreachable or reset connection, a timeout without answer, a 5xx, throttling.
 */
function storageFailure(error: StorageError): Failure {
  const { httpStatus: status, errorName, causeCode, tooManyParts, refused } = storageFailureFacts(error);
  const details = {
    ...(errorName !== undefined ? { error: errorName } : {}),
    ...(status !== undefined ? { http_status: status } : {}),
    ...(causeCode !== undefined ? { cause: causeCode } : {}),
  };
  if (tooManyParts) {
    return {
      retry: false,
      errors: { code: 'too_large', message: `${error.message} Raise EXPORT_PART_SIZE_MIB or narrow the query.`, ...details },
    };
  }
  if (!refused) return { retry: true, errors: { code: 'storage_error', message: error.message, ...details } };
  const code = status === 401 || status === 403 ? 'storage_denied' : 'storage_misconfigured';
  const what = code === 'storage_denied' ? 'the storage refused access' : 'the storage refused the request';
  return {
    retry: false,
    errors: { code, message: `${what} (${status}${details.error ? ` ${details.error}` : ''}): ${error.message}`, ...details },
  };
}
