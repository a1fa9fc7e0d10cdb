import type pg from 'pg';
import { primaryWalPosition, replayProgress } from '../db/statements/replica';
import { StorageError } from '../storage/errors';
import { CopyQueryError } from './copy-to-object';

/**
 * When exports read from another database than the primary (EXPORT_DATABASE_URL, a streaming
 * standby), an attempt first waits until that database has replayed the WAL the primary had
 * written when the attempt began, for at most EXPORT_REPLICA_MAX_LAG_S. So the export sees every
 * change committed before its attempt (a device moved to another customer a second earlier
 * included), never an older state. Comparing WAL positions rather than replay timestamps does not
 * mistake an idle primary (nothing to replay) for a standby that is behind.
 */

/** The export database cannot be reached, or dropped the export's read (shut down, recovery conflict). */
export class ExportDatabaseUnavailable extends Error {
  override name = 'ExportDatabaseUnavailable';
  constructor(override readonly cause: unknown) {
    super(`the export database (EXPORT_DATABASE_URL) is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** The standby had not replayed what the primary had when the attempt began, within the bound. */
export class ExportDatabaseBehind extends Error {
  override name = 'ExportDatabaseBehind';
  constructor(
    readonly maxLagMs: number,
    readonly bytesBehind: number,
  ) {
    super(
      `the export database (EXPORT_DATABASE_URL) is more than ${maxLagMs / 1000} s behind the primary ` +
        `(still ${bytesBehind} bytes of WAL to replay; EXPORT_REPLICA_MAX_LAG_S)`,
    );
  }
}

/** How often the standby's replay is looked at while waiting. */
const POLL_MS = 100;

/**
 * Resolves once `reads` has replayed what `primary` has written now; throws ExportDatabaseBehind
 * after `maxLagMs`, ExportDatabaseUnavailable when `reads` does not answer. A server that is not
 * in recovery (the primary itself) is caught up at once.
 */
export async function awaitExportDatabase(options: {
  primary: pg.Pool;
  reads: pg.Pool;
  maxLagMs: number;
  signal: AbortSignal;
}): Promise<void> {
  const { primary, reads, maxLagMs, signal } = options;
  const target = await primaryWalPosition(primary);
  const deadline = Date.now() + maxLagMs;
  for (;;) {
    signal.throwIfAborted();
    const progress = await replayProgress(reads, target).catch((error: unknown) => {
      throw new ExportDatabaseUnavailable(error);
    });
    if (progress.caughtUp) return;
    if (Date.now() >= deadline) throw new ExportDatabaseBehind(maxLagMs, progress.bytesBehind);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);
// 40001 on a standby is a recovery conflict: replay needed what the COPY was reading.
const READ_WITHDRAWN = (code: string | undefined) =>
  code !== undefined && (code.startsWith('08') || code.startsWith('57P') || code === '40001');

/**
 * A fault of the COPY that is the export database going away or withdrawing the read, rather than
 * the query: when that database is a standby of its own, it is reported as such.
 */
export function isExportDatabaseFault(error: unknown): boolean {
  if (error instanceof CopyQueryError) return READ_WITHDRAWN(error.cause.code);
  if (!(error instanceof Error) || error instanceof StorageError) return false;
  const code = (error as { code?: unknown }).code;
  return (
    (typeof code === 'string' && CONNECTION_ERRORS.has(code)) ||
    error.message === 'Connection terminated unexpectedly' ||
    error.message === 'the database connection ended before the COPY finished'
  );
}
