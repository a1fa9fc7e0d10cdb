import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { EXPORT_ERROR_CODES, type ExportErrorCode } from '../../src/db/schema';
import { ExportQueryError } from '../../src/exports/compile-query';
import { StorageError } from '../../src/storage/errors';
import { CopyQueryError, ObjectTooLarge } from '../../src/worker/copy-to-object';
import { ExportDatabaseBehind, ExportDatabaseUnavailable, isExportDatabaseFault } from '../../src/worker/export-database';
import { classifyFailure } from '../../src/worker/failure';

/** classifyFailure: each kind of error -> the export's error code, and whether it is retried. */

function databaseError(code: string, message = `error ${code}`): pg.DatabaseError {
  const error = new pg.DatabaseError(message, 0, 'error');
  error.code = code;
  return error;
}

/** What the AWS SDK throws: a named error with the HTTP status S3 answered, if any. */
function sdkError(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} from S3`), { name, $metadata: status === undefined ? {} : { httpStatusCode: status }, ...extra });
}

const cases: Array<[string, unknown, ExportErrorCode, boolean]> = [
  ['an invalid definition', new ExportQueryError('the analytics query is invalid'), 'query_error', false],
  ['an object over the part ceiling', new ObjectTooLarge(5 * 1024 * 1024 * 10_000), 'too_large', false],
  ['the statement timeout (57014)', new CopyQueryError(databaseError('57014')), 'timeout', false],
  ['a COPY SQL error (42P01)', new CopyQueryError(databaseError('42P01')), 'query_error', false],
  ['a division by zero (22012)', new CopyQueryError(databaseError('22012')), 'query_error', false],
  ['the connection lost (08006)', new CopyQueryError(databaseError('08006')), 'internal', true],
  ['the server shutting down (57P01)', new CopyQueryError(databaseError('57P01')), 'internal', true],
  ['access denied (403)', new StorageError(sdkError('AccessDenied', 403)), 'storage_denied', false],
  ['bad credentials (401)', new StorageError(sdkError('Unauthorized', 401)), 'storage_denied', false],
  ['no such bucket (404)', new StorageError(sdkError('NoSuchBucket', 404)), 'storage_misconfigured', false],
  ['a refused request (400)', new StorageError(sdkError('InvalidArgument', 400)), 'storage_misconfigured', false],
  ['a 500', new StorageError(sdkError('InternalError', 500)), 'storage_error', true],
  ['a 503 SlowDown', new StorageError(sdkError('SlowDown', 503)), 'storage_error', true],
  ['throttled (429)', new StorageError(sdkError('TooManyRequests', 429)), 'storage_error', true],
  ['a request timeout (408)', new StorageError(sdkError('RequestTimeout', 408)), 'storage_error', true],
  ['a clock skew (403 RequestTimeTooSkewed)', new StorageError(sdkError('RequestTimeTooSkewed', 403)), 'storage_error', true],
  [
    'unreachable (no answer)',
    new StorageError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    'storage_error',
    true,
  ],
  [
    'more than 10,000 parts',
    new StorageError(new Error('Exceeded 10000 parts in multipart upload to Bucket: b Key: k.')),
    'too_large',
    false,
  ],
  ['the export database too far behind', new ExportDatabaseBehind(30_000, 4096), 'export_database_behind', true],
  [
    'the export database unreachable',
    new ExportDatabaseUnavailable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    'export_database_unavailable',
    true,
  ],
  ['anything else', new Error('a bug'), 'internal', true],
  ['a thrown string', 'not even an Error', 'internal', true],
];

describe('classifyFailure', () => {
  for (const [what, error, code, retry] of cases) {
    test(`${what}: ${code}, ${retry ? 'retried' : 'final'}`, () => {
      const failure = classifyFailure(error);
      assert.deepEqual({ code: failure.errors.code, retry: failure.retry }, { code, retry });
      assert.ok(EXPORT_ERROR_CODES.includes(failure.errors.code), `${failure.errors.code} is a known code`);
      assert.equal(typeof failure.errors.message, 'string');
      assert.notEqual(failure.errors.message, '');
    });
  }

  test('a COPY error carries its SQLSTATE, detail and hint; a storage error its HTTP status and name', () => {
    const copy = databaseError('22012', 'division by zero');
    copy.detail = 'the detail';
    copy.hint = 'the hint';
    assert.deepEqual(classifyFailure(new CopyQueryError(copy)).errors, {
      code: 'query_error',
      message: 'division by zero',
      sqlstate: '22012',
      detail: 'the detail',
      hint: 'the hint',
    });
    const storage = classifyFailure(new StorageError(sdkError('NoSuchBucket', 404))).errors;
    assert.equal(storage.http_status, 404);
    assert.equal(storage.error, 'NoSuchBucket');
    assert.match(storage.message, /refused the request \(404 NoSuchBucket\)/);
    assert.equal(classifyFailure(new ObjectTooLarge(1000)).errors.max_bytes, 1000);
  });
});

describe('isExportDatabaseFault: what of a COPY on a standby of its own is the standby, not the query', () => {
  const faults: Array<[string, unknown, boolean]> = [
    ['a recovery conflict (40001)', new CopyQueryError(databaseError('40001')), true],
    ['the standby shutting down (57P01)', new CopyQueryError(databaseError('57P01')), true],
    ['the connection lost (08006)', new CopyQueryError(databaseError('08006')), true],
    ['refused connections', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5433'), { code: 'ECONNREFUSED' }), true],
    ['a SQL error (42P01)', new CopyQueryError(databaseError('42P01')), false],
    ['the statement timeout (57014)', new CopyQueryError(databaseError('57014')), false],
    ['storage unreachable', new StorageError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), false],
  ];
  for (const [what, error, fault] of faults) {
    test(`${what}: ${fault ? 'the export database' : 'not the export database'}`, () => {
      assert.equal(isExportDatabaseFault(error), fault);
    });
  }
});
