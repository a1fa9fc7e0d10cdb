import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextWebhookAttempt, WEBHOOK_MAX_ATTEMPTS } from '../../src/worker/webhook-delivery';

/** The webhook retry schedule: doubling from the first delay, at most 2 hours apart, for about 24 hours. */

const HOUR = 3600_000;

test('with the default first delay of 10 s, attempts double up to 2 hours apart and stop within 24 hours', () => {
  const created = new Date('2026-01-01T00:00:00Z');
  let now = created;
  const delays: number[] = [];
  for (let attempts = 1; ; attempts++) {
    const next = nextWebhookAttempt(attempts, created, now, 10_000);
    if (!next) break;
    delays.push(next.getTime() - now.getTime());
    now = next;
  }
  assert.deepEqual(delays.slice(0, 4), [10_000, 20_000, 40_000, 80_000]);
  assert.equal(Math.max(...delays), 2 * HOUR);
  assert.equal(delays.length + 1, 21, 'attempts in all');
  const span = now.getTime() - created.getTime();
  assert.ok(span > 22 * HOUR && span <= 24 * HOUR, `${span / HOUR} h from the first attempt to the last`);
});

test('no attempt after the last one allowed, nor one that would fall more than 24 hours after the notification', () => {
  const created = new Date('2026-01-01T00:00:00Z');
  assert.equal(nextWebhookAttempt(WEBHOOK_MAX_ATTEMPTS, created, created, 0), null);
  assert.notEqual(nextWebhookAttempt(WEBHOOK_MAX_ATTEMPTS - 1, created, created, 0), null);
  assert.equal(nextWebhookAttempt(3, created, new Date(created.getTime() + 24 * HOUR - 1000), 10_000), null);
});
