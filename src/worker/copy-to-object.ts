import type { S3Client } from '@aws-sdk/client-s3';
import { Transform, type TransformCallback } from 'node:stream';
import pg from 'pg';
import { to as copyTo, type CopyToStreamQuery } from 'pg-copy-streams';
import type { Logger } from '../logger';
import { MAX_UPLOAD_PARTS, maxObjectBytes, uploadStream, type StreamUpload } from '../storage/upload';
import type { ExportEncoder, FileEncoder } from './encoders';
import { ExportProgress } from './export-progress';

/**
 * The heart of an export: `COPY (<select>) TO STDOUT` on a connection of its own (from a pool
 * whose sessions copySessionOptions set up), through the export's encoder (its row reader and
 * the file's encoder: src/worker/encoders) and a byte-counting transform, into an S3 upload
 * (multipart above one part, PutObject below). Backpressure holds end to end: the upload reads a
 * part at a time, the transforms wait for it, the COPY stream stops reading the socket and
 * Postgres waits. Memory is about partSize x (queueSize + 1) plus what the encoder holds (a
 * Parquet row group, a zstd block), whatever the size of the export.
 *
 * On any failure the first error is the one reported: a COPY error (SQL error, timeout), a storage
 * error, or the stop reason from `signal`. The upload is aborted (by us: lib-storage's own abort
 * would replace the real error with AbortMultipartUpload's, e.g. s3rver's 405) and the connection
 * is released with the error, so the pool destroys it and Postgres ends the backend. Before it
 * throws, it waits for every S3 request of the upload to settle and then removes what they wrote
 * (the object under `key`, which is this attempt's alone, and the multipart upload): aborting
 * only makes lib-storage's done() reject, and a PutObject or CompleteMultipartUpload already sent
 * still lands afterwards.
 */

/**
 * The COPY itself failed with a Postgres error (its SQL, its statement timeout, the server going
 * away). Errors of the worker's other statements (claim, heartbeat, completion) are not this:
 * they say nothing about the export's query.
 */
export class CopyQueryError extends Error {
  override name = 'CopyQueryError';
  constructor(override readonly cause: pg.DatabaseError) {
    super(cause.message);
  }
}

/** The file outgrew what one upload can hold: running it again would fail again. */
export class ObjectTooLarge extends Error {
  override name = 'ObjectTooLarge';
  constructor(readonly maxBytes: number) {
    super(
      `the export is larger than one upload can hold (${maxBytes} bytes: ${MAX_UPLOAD_PARTS} parts of ` +
        `${maxBytes / MAX_UPLOAD_PARTS} bytes); narrow the query or raise EXPORT_PART_SIZE_MIB`,
    );
  }
}

/** The role drizzle/0011 creates for COPY sessions: SELECT on what an export reads, nothing more. */
export const EXPORT_READER_ROLE = 'analytics_export_reader';

/**
 * The settings of every COPY session, sent with the connection's start-up (`options`), so that
 * an export spends no round trip on them. One COPY is one statement, consistent in its own
 * snapshot: no transaction is needed, and read-only is the session's default. With `readerRole`
 * (EXPORT_READER_ROLE, when the worker may take it) the session also runs as that role, which
 * can only read: a session that turned read-only off still could not write.
 */
export function copySessionOptions(statementTimeoutMs: number, serverVersionNum: number, readerRole?: string, workMemMiB?: number): string {
  return [
    ...(readerRole ? [`role=${readerRole}`] : []),
    `statement_timeout=${Math.floor(statementTimeoutMs)}`,
    // The export's ORDER BY sorts every row it writes: at the server's default (4 MB) a sort of a
    // few hundred thousand rows spills to disk. Each process of the plan (leader and parallel
    // workers) may use this much; whether it pays depends on the plan (docs/performance.md).
    ...(workMemMiB === undefined ? [] : [`work_mem=${Math.floor(workMemMiB)}MB`]),
    'default_transaction_read_only=on',
    // Pinned so that the CSV's numbers do not depend on the server's or role's settings.
    'extra_float_digits=1',
    // A backend still sorting when its client goes away notices within a second (Postgres 14+;
    // older servers refuse the unknown setting, so they are left as they are).
    ...(serverVersionNum >= 140000 ? ['client_connection_check_interval=1000'] : []),
  ]
    .map((setting) => `-c ${setting}`)
    .join(' ');
}

export interface CopyToObjectOptions {
  /** Connections set up with copySessionOptions. */
  pool: pg.Pool;
  s3: S3Client;
  bucket: string;
  key: string;
  select: string;
  /** The export's format, compression and formula guard. */
  encoder: ExportEncoder;
  /** Content-Disposition for the file, given its extension. */
  contentDisposition: (extension: string) => string;
  partSizeBytes: number;
  queueSize: number;
  /** The largest object allowed: maxObjectBytes(partSizeBytes) unless a test sets it lower. */
  maxBytes?: number;
  /** Aborting it stops the export at once; its reason is the error thrown. */
  signal: AbortSignal;
  /** Progress is read from it (bytes, rows) while the export runs. */
  progress?: ExportProgress;
  logger: Logger;
}

export async function copyToObject(options: CopyToObjectOptions): Promise<{ rows: number; bytes: number }> {
  const { signal, logger } = options;
  signal.throwIfAborted();
  const client = await options.pool.connect();
  const progress = options.progress ?? new ExportProgress();
  const rowReader = options.encoder.rowReader();
  const file = options.encoder.newFile();
  const maxBytes = options.maxBytes ?? maxObjectBytes(options.partSizeBytes);
  // Stop as soon as the file outgrows what one upload can hold, not after uploading it all.
  const counter = new FileBytes(progress, file, maxBytes, (error) => fail(error));
  let copy: CopyToStreamQuery | undefined;
  let upload: StreamUpload | undefined;
  // The first failure wins; a holder object, as it is set from callbacks.
  const failed: { first?: { error: unknown } } = {};
  const throwIfFailed = () => {
    if (failed.first) throw failed.first.error;
  };

  const fail = (error: unknown) => {
    if (failed.first) return;
    failed.first = { error };
    copy?.destroy();
    rowReader.destroy();
    file.input.destroy();
    file.output.destroy();
    counter.destroy();
    upload?.abort();
  };
  const onAbort = () => fail(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });

  try {
    signal.throwIfAborted();
    const finished = copyFinished(client);
    copy = client.query(copyTo(options.encoder.copyStatement(options.select)));
    // Piped, not pipeline(): pipeline() would destroy the COPY stream with the upload's own
    // complaint about its body (an AbortError) and hide which side failed first. Here the COPY's
    // 'error' is always a Postgres or connection error, an encoder's its own (a row it cannot read
    // or write); the upload reports its failures through done(); the body's own 'error' after the
    // upload gave up on it says nothing new.
    copy.on('error', (error: Error) => fail(error instanceof pg.DatabaseError ? new CopyQueryError(error) : error));
    rowReader.on('error', fail);
    file.input.on('error', fail);
    file.output.on('error', fail);
    counter.on('error', () => undefined);
    copy.pipe(rowReader).pipe(file.input);
    file.output.pipe(counter);
    upload = uploadStream(options.s3, {
      bucket: options.bucket,
      key: options.key,
      body: counter,
      contentType: file.contentType,
      contentDisposition: options.contentDisposition(file.extension),
      partSizeBytes: options.partSizeBytes,
      queueSize: options.queueSize,
    });
    let uploaded = false;
    try {
      await upload.done;
      uploaded = true;
    } catch (error) {
      fail(error);
    }
    // A complete upload means the whole COPY arrived: a stop requested from here on (or in the
    // instant before) is for the caller to settle against the export's row, not an error.
    if (!uploaded) throwIfFailed();
    signal.removeEventListener('abort', onAbort);
    // The stream ends at CopyDone; rowCount is set by the CommandComplete that follows it.
    await finished;
    // Two counts of one thing: the rows the file holds, and the rows Postgres says it sent.
    if (file.rows !== copy.rowCount) {
      throw new Error(`the file holds ${file.rows} rows but the COPY sent ${copy.rowCount}`);
    }
    client.release();
    return { rows: file.rows, bytes: progress.bytes };
  } catch (error) {
    const reported = failed.first ? failed.first.error : error;
    client.release(reported instanceof Error ? reported : new Error(String(reported)));
    if (upload) await discardAttempt(upload, options.key, logger);
    throw reported;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Counts the bytes of the file on their way to storage (exact: this is the object's size) and
 * keeps the attempt's progress; reports a file that outgrows one upload (the caller stops it).
 */
class FileBytes extends Transform {
  constructor(
    private readonly progress: ExportProgress,
    private readonly file: FileEncoder,
    private readonly maxBytes: number,
    private readonly tooLarge: (error: ObjectTooLarge) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.progress.bytes += chunk.length;
    this.progress.rows = this.file.rows;
    if (this.progress.bytes > this.maxBytes) {
      this.tooLarge(new ObjectTooLarge(this.maxBytes));
      return callback();
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.progress.rows = this.file.rows;
    callback();
  }
}

/**
 * Resolves when the client has read the end of the COPY (CommandComplete, then ReadyForQuery):
 * pg's client is idle again ('drain'). Rejects if the connection ends first. Only awaited on
 * success; a rejection nobody awaits is dropped here.
 */
function copyFinished(client: pg.PoolClient): Promise<void> {
  const finished = new Promise<void>((resolve, reject) => {
    const onEnd = () => reject(new Error('the database connection ended before the COPY finished'));
    client.once('end', onEnd);
    client.once('drain', () => {
      client.off('end', onEnd);
      resolve();
    });
  });
  finished.catch(() => undefined);
  return finished;
}

/**
 * Best effort, once the upload's requests settled: a PutObject or completion may have landed. A
 * failure here is logged, never reported in place of the export's own error.
 */
async function discardAttempt(upload: StreamUpload, key: string, logger: Logger): Promise<void> {
  const { abortError, deleteError } = await upload.discard();
  // s3rver has no AbortMultipartUpload (405); on AWS a lifecycle rule removes what is left.
  if (abortError !== undefined) logger.debug({ err: abortError, key }, 'could not abort the multipart upload');
  if (deleteError !== undefined)
    logger.warn({ err: deleteError, key }, 'could not delete the object of a stopped attempt; the orphan sweep will');
}
