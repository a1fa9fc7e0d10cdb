import { DatabaseError } from 'pg';
import { ExportQueryError } from '../exports/compile-query';
import { StorageError } from './copy-to-object';
import type { ExportErrors } from './export-statements';

/**
 * What a failed attempt means for the export, by kind:
 *   - the query (a Postgres error, a statement timeout, an invalid definition): failed at once,
 *     running it again would fail again;
 *   - storage (S3 unreachable, 5xx, anything the upload threw): retried with backoff;
 *   - anything else (the database connection lost, a bug): retried as `internal`.
 */
export interface Failure {
  retry: boolean;
  errors: ExportErrors;
}

const QUERY_CANCELED = '57014';

export function classifyFailure(error: unknown): Failure {
  if (error instanceof ExportQueryError) return { retry: false, errors: { code: 'query_error', message: error.message } };
  if (error instanceof DatabaseError) {
    const details = { sqlstate: error.code, ...(error.detail ? { detail: error.detail } : {}), ...(error.hint ? { hint: error.hint } : {}) };
    if (error.code === QUERY_CANCELED && /statement timeout/.test(error.message)) {
      return { retry: false, errors: { code: 'timeout', message: error.message, ...details } };
    }
    // Class 08 (connection) and 57P (shutdown) are the server going away, not the query.
    if (error.code?.startsWith('08') || error.code?.startsWith('57P')) {
      return { retry: true, errors: { code: 'internal', message: error.message, ...details } };
    }
    return { retry: false, errors: { code: 'query_error', message: error.message, ...details } };
  }
  if (error instanceof StorageError) return { retry: true, errors: storageErrors(error) };
  return { retry: true, errors: { code: 'internal', message: error instanceof Error ? error.message : String(error) } };
}

function storageErrors(error: StorageError): ExportErrors {
  const cause = error.cause as { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined;
  const status = cause?.$metadata?.httpStatusCode;
  return {
    code: 'storage_error',
    message: error.message,
    ...(typeof cause?.name === 'string' && cause.name !== 'Error' ? { error: cause.name } : {}),
    ...(typeof status === 'number' ? { http_status: status } : {}),
    ...(typeof cause?.code === 'string' ? { cause: cause.code } : {}),
  };
}
