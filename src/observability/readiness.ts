import type { CheckResult } from './check-result';
import type { ServiceContext } from '../context';
import { headBucket } from '../storage/bucket';
import { pingDatabase } from '../db/statements/server';

/**
 * GET /readyz: can this process do its work right now? The database answers `SELECT 1` and the
 * export bucket answers HeadBucket, each within a short timeout, checked side by side so one
 * slow part does not hide the other; in a process that runs the worker, its job runner is taking
 * jobs too (not stopped by an error, not paused because storage is unreachable).
 */

export interface Readiness {
  ready: boolean;
  checks: { database: CheckResult; storage: CheckResult; worker?: CheckResult };
}

export const READINESS_TIMEOUT_MS = 2000;

export async function checkReadiness(context: ServiceContext, timeoutMs = READINESS_TIMEOUT_MS): Promise<Readiness> {
  const { database } = context;
  const [databaseCheck, storageCheck] = await Promise.all([
    check(timeoutMs, () => pingDatabase(database.sql)),
    checkStorage(context, timeoutMs),
  ]);
  const workerCheck = context.workerHealth?.();
  const checks = { database: databaseCheck, storage: storageCheck, ...(workerCheck ? { worker: workerCheck } : {}) };
  return { ready: Object.values(checks).every((result) => result.status === 'ok'), checks };
}

/** HeadBucket on the export bucket within `timeoutMs`: the worker asks it before it takes jobs, too. */
export function checkStorage(context: Pick<ServiceContext, 's3' | 'config'>, timeoutMs = READINESS_TIMEOUT_MS): Promise<CheckResult> {
  return check(timeoutMs, async (signal) => {
    await headBucket(context.s3, context.config.s3.bucket, signal);
  });
}

async function check(timeoutMs: number, probe: (signal: AbortSignal) => Promise<void>): Promise<CheckResult> {
  const started = Date.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    await Promise.race([probe(controller.signal), timeout]);
    return { status: 'ok', duration_ms: Date.now() - started };
  } catch (error) {
    return { status: 'failed', duration_ms: Date.now() - started, error: describe(error) };
  } finally {
    clearTimeout(timer);
  }
}

function describe(error: unknown): string {
  const e = error as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  // HeadBucket has no body: a missing bucket is a bare 404 ("NotFound"), which says little alone.
  if (status === 404) return 'bucket not found (404)';
  if (status === 403) return 'access to the bucket denied (403)';
  const message = e.message || e.name || String(error);
  return e.code && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}
