import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { retryDelayMs as s3RetryDelayMs } from '../../src/storage/s3-client';
import { retryDelayMs as exportRetryDelayMs } from '../../src/worker/export-job';

/**
 * The two backoffs: between the tries of one S3 request (1 s doubling, at most 20 s), and
 * between the attempts of an export after a transient fault (EXPORT_RETRY_DELAY_S doubling, at
 * most 1 hour). Both grow with the attempt and never pass their cap.
 */

const attempt = fc.integer({ min: 1, max: 1000 });

test('an export waits EXPORT_RETRY_DELAY_S after its first attempt, doubling, at most an hour', () => {
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => exportRetryDelayMs(10_000, n)),
    [10_000, 20_000, 40_000, 80_000],
  );
  assert.equal(exportRetryDelayMs(10_000, 100), 3_600_000);
  assert.equal(exportRetryDelayMs(0, 7), 0);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 3_600_000 }), attempt, attempt, (base, a, b) => {
      const [early, late] = a <= b ? [a, b] : [b, a];
      const delay = exportRetryDelayMs(base, late);
      assert.ok(exportRetryDelayMs(base, early) <= delay, 'monotone');
      assert.ok(delay >= base && delay <= 3_600_000, 'at least the base, at most an hour');
      assert.ok(Number.isFinite(delay));
    }),
  );
});

test('an S3 request is tried again 1 s later, doubling, at most 20 s apart', () => {
  // The SDK asks for the delay before try 2, 3, ...
  assert.deepEqual([2, 3, 4, 5, 6, 7].map(s3RetryDelayMs), [1000, 2000, 4000, 8000, 16_000, 20_000]);
  fc.assert(
    fc.property(attempt, attempt, (a, b) => {
      const [early, late] = a <= b ? [a, b] : [b, a];
      const delay = s3RetryDelayMs(late);
      assert.ok(s3RetryDelayMs(early) <= delay, 'monotone');
      assert.ok(delay >= 1000 && delay <= 20_000, 'from 1 s to 20 s');
    }),
  );
  // 9 tries (S3_MAX_ATTEMPTS' default) span about 91 s, as src/config.ts says.
  const total = [2, 3, 4, 5, 6, 7, 8, 9].reduce((sum, n) => sum + s3RetryDelayMs(n), 0);
  assert.equal(total, 91_000);
});
