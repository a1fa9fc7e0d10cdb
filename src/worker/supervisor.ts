import type { Runner } from 'graphile-worker';
import type { Logger } from '../logger';
import type { CheckResult } from '../observability/check-result';
import { repeatEvery } from './repeat';

const SUPERVISOR_INTERVAL_MS = 1000;
/** While the runner takes jobs, storage is checked this often; while it does not, every tick. */
const STORAGE_CHECK_INTERVAL_MS = 5000;
/** Consecutive failed storage checks before the runner stops taking jobs (one is a blip). */
const STORAGE_FAILURES_TO_PAUSE = 2;

/**
 * Keeps graphile-worker's runner taking jobs while it can, and only then:
 *   - the runner stops itself when one of its own writes fails (completing or failing a job
 *     while Postgres restarts): it is started again, once the database takes it;
 *   - a worker whose storage check (HeadBucket) fails twice in a row stops its runner (running
 *     exports get SHUTDOWN_GRACE_S, then go back to the queue for another worker) and starts it
 *     again when the check passes: a worker that cannot reach storage takes no export.
 * The first start happens before this resolves, and its failure is thrown (start-up fails).
 */
export async function superviseRunner(options: {
  start: () => Promise<Runner>;
  checkStorage: () => Promise<CheckResult>;
  logger: Logger;
}): Promise<{ health(): CheckResult; stop(): Promise<void> }> {
  const { logger } = options;
  let runner: Runner | undefined;
  // Why the runner is not taking jobs (undefined while it is).
  let problem: string | undefined = 'the job runner is starting';
  let since = Date.now();
  let storageFailures = 0;
  let lastStorageCheck = 0;
  let stopping = false;

  const notTakingJobs = (why: string) => {
    if (problem === undefined) since = Date.now();
    problem = why;
  };
  const startRunner = async () => {
    const started = await options.start();
    runner = started;
    problem = undefined;
    // Resolves (or rejects) when the runner stops: by our stop(), or by itself on an error.
    void started.promise
      .catch(() => undefined)
      .then(() => {
        if (runner !== started) return;
        runner = undefined;
        notTakingJobs('the job runner stopped on a database error; restarting it');
        logger.error('the job runner stopped on its own (see the graphile-worker lines before); restarting it');
      });
  };
  const stopRunner = async () => {
    const stopped = runner;
    runner = undefined;
    await stopped?.stop().catch((error: unknown) => logger.warn({ err: error }, 'error while stopping the job runner'));
  };

  const supervise = async () => {
    if (stopping) return;
    if (runner === undefined || Date.now() - lastStorageCheck >= STORAGE_CHECK_INTERVAL_MS) {
      lastStorageCheck = Date.now();
      const storage = await options.checkStorage();
      if (storage.status === 'ok') storageFailures = 0;
      else storageFailures++;
      if (storage.status === 'failed' && (runner === undefined || storageFailures >= STORAGE_FAILURES_TO_PAUSE)) {
        if (runner) logger.warn({ error: storage.error }, 'storage unreachable: the worker stops taking jobs until it answers');
        notTakingJobs(`storage unreachable (${storage.error}): not taking jobs until it answers`);
        await stopRunner();
        return;
      }
    }
    if (runner !== undefined || stopping) return;
    try {
      await startRunner();
      logger.info({ after_ms: Date.now() - since }, 'the job runner takes jobs again');
    } catch (error) {
      notTakingJobs(`the job runner could not start: ${error instanceof Error ? error.message : String(error)}`);
      logger.warn({ err: error }, 'the job runner could not start; trying again');
    }
  };

  // First start: storage is checked, and a runner that cannot start fails the start-up.
  lastStorageCheck = Date.now();
  const storage = await options.checkStorage();
  if (storage.status === 'ok') await startRunner();
  else {
    notTakingJobs(`storage unreachable (${storage.error}): not taking jobs until it answers`);
    logger.warn({ error: storage.error }, 'storage unreachable: the worker takes no jobs until it answers');
  }
  const loop = repeatEvery(SUPERVISOR_INTERVAL_MS, supervise);

  return {
    health: () => (problem === undefined ? { status: 'ok', duration_ms: 0 } : { status: 'failed', duration_ms: 0, error: problem }),
    async stop() {
      stopping = true;
      await loop.stop();
      await stopRunner();
    },
  };
}
