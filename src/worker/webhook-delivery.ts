import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { ResolvedAddress } from '../exports/notify-url';

/**
 * One webhook POST. The connection goes to `address`, the address the SSRF check passed (the URL's
 * host still names the TLS certificate and the Host header), so DNS cannot change between the
 * check and the request. Redirects are not followed: a 3xx is an answer like any non-2xx. The
 * whole exchange has WEBHOOK_TIMEOUT_MS; the response body is read (to free the socket) and
 * ignored.
 */

export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Bytes of the response read before the rest is dropped: only the status matters. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export type DeliveryResult = { ok: true; statusCode: number } | { ok: false; statusCode: number | null; error: string };

export function postWebhook(options: {
  url: URL;
  address: ResolvedAddress;
  headers: Record<string, string>;
  body: string;
  timeoutMs?: number;
}): Promise<DeliveryResult> {
  const { url, address, body } = options;
  const timeoutMs = options.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
    if (lookupOptions.all) callback(null, [{ address: address.address, family: address.family }]);
    else callback(null, address.address, address.family);
  };
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: DeliveryResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const req = request(
      url,
      {
        method: 'POST',
        lookup: pinned,
        agent: false,
        headers: {
          ...options.headers,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': 'analytics-export-webhooks/1',
        },
      },
      (res) => {
        const statusCode = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        const done = () =>
          settle(statusCode >= 200 && statusCode < 300 ? { ok: true, statusCode } : { ok: false, statusCode, error: `HTTP ${statusCode}` });
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      },
    );
    const timer = setTimeout(() => {
      settle({ ok: false, statusCode: null, error: `no answer within ${timeoutMs / 1000} s` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => settle({ ok: false, statusCode: null, error: error.code ?? error.message }));
    req.end(body);
  });
}

/** Retries go on for about a day after the notification was added, and at most this many attempts. */
export const WEBHOOK_RETRY_WINDOW_MS = 24 * 3600 * 1000;
export const WEBHOOK_MAX_ATTEMPTS = 25;
const MAX_RETRY_DELAY_MS = 2 * 3600 * 1000;

/**
 * When to try again after failed attempt number `attempts`: `firstDelayMs` doubled on each
 * attempt, at most 2 hours apart; null (give up) after WEBHOOK_MAX_ATTEMPTS attempts or when
 * the next one would fall more than 24 hours after `created`. With the default first delay of
 * 10 s that is 21 attempts over about 24 hours.
 */
export function nextWebhookAttempt(attempts: number, created: Date, now: Date, firstDelayMs: number): Date | null {
  if (attempts >= WEBHOOK_MAX_ATTEMPTS) return null;
  const delay = Math.min(firstDelayMs * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS);
  const next = new Date(now.getTime() + delay);
  return next.getTime() - created.getTime() > WEBHOOK_RETRY_WINDOW_MS ? null : next;
}
