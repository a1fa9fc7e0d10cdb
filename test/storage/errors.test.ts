import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StorageError, storageFailureFacts } from '../../src/storage/errors';

/** Unit tests, no S3: what a storage failure says, as the worker's failure classification reads it. */

/** An error as the SDK throws it for an answer with `status`. */
function answered(status: number, name = 'Error', message = 'refused'): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

describe('StorageError', () => {
  test("carries the SDK's message, or its code, or the parts of a failed happy-eyeballs connect", () => {
    assert.equal(new StorageError(answered(403, 'AccessDenied', 'Access Denied')).message, 'Access Denied');
    assert.equal(new StorageError(Object.assign(new Error(''), { code: 'ECONNRESET' })).message, 'ECONNRESET');
    const connect = new AggregateError([new Error('connect ECONNREFUSED 127.0.0.1:9'), new Error('connect ECONNREFUSED ::1:9')]);
    assert.equal(new StorageError(connect).message, 'connect ECONNREFUSED 127.0.0.1:9; connect ECONNREFUSED ::1:9');
    assert.equal(new StorageError('plain').message, 'plain');
  });
});

describe('storageFailureFacts', () => {
  test('a refusal for good: denied, no such bucket, another 4xx', () => {
    assert.deepEqual(storageFailureFacts(new StorageError(answered(403, 'AccessDenied'))), {
      httpStatus: 403,
      errorName: 'AccessDenied',
      tooManyParts: false,
      refused: true,
    });
    assert.equal(storageFailureFacts(new StorageError(answered(404, 'NoSuchBucket'))).refused, true);
    assert.equal(storageFailureFacts(new StorageError(answered(400, 'InvalidArgument'))).refused, true);
  });

  test('may pass: throttled, a request timeout, a skewed clock, any 5xx, no answer at all', () => {
    for (const error of [
      answered(503, 'SlowDown'),
      answered(429),
      answered(408, 'RequestTimeout'),
      answered(403, 'RequestTimeTooSkewed'),
      answered(500, 'InternalError'),
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    ]) {
      assert.equal(storageFailureFacts(new StorageError(error)).refused, false, error.name);
    }
    assert.deepEqual(storageFailureFacts(new StorageError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))), {
      causeCode: 'ECONNRESET',
      tooManyParts: false,
      refused: false,
    });
  });

  test('never a refusal without a 3xx or 4xx answer', () => {
    fc.assert(
      fc.property(fc.option(fc.integer({ min: 100, max: 599 }), { nil: undefined }), fc.string(), (status, name) => {
        fc.pre(status === undefined || status < 300 || status >= 500);
        const cause = status === undefined ? Object.assign(new Error('x'), { name }) : answered(status, name);
        assert.equal(storageFailureFacts(new StorageError(cause)).refused, false);
      }),
    );
  });

  test("lib-storage's refusal of more than 10,000 parts", () => {
    const facts = storageFailureFacts(new StorageError(new Error('Exceeded 10000 parts in multipart upload to Bucket: b Key: k.')));
    assert.equal(facts.tooManyParts, true);
    assert.equal(facts.refused, false);
  });
});
