import type { S3Client } from '@aws-sdk/client-s3';
import { Transform, type TransformCallback } from 'node:stream';
import pg from 'pg';
import type { CopyToStreamQuery } from 'pg-copy-streams';
import type { Logger } from '../logger';
import { MAX_UPLOAD_PARTS, maxObjectBytes, uploadStream, type StreamUpload } from '../storage/upload';
import { copyOut } from './copy-out';
import type { ExportEncoder, FileEncoder } from './encoders';
import { ExportProgress } from './export-progress';
import { FileSplitter, type OpenFile } from './file-splitter';

/**
 * The heart of an export: `COPY (<select>) TO STDOUT` on a connection of its own (from a pool
 * whose sessions copySessionOptions set up), through the export's row reader (whole rows), split
 * into files at batch boundaries (one while the export is smaller than EXPORT_MAX_FILE_MIB: the
 * FileSplitter), each file through an encoder of its own (src/worker/encoders) and a
 * byte-counting transform into an S3 upload of its own (multipart above one part, PutObject
 * below). Backpressure holds end to end: the upload reads a part at a time, the transforms wait
 * for it, the COPY stream stops reading the socket and Postgres waits. Memory is about partSize x
 * (queueSize + 1) plus what the encoder holds (a Parquet row group, a zstd block), whatever the
 * size of the export (twice that while one file's upload completes and the next one starts).
 *
 * On any failure the first error is the one reported: a COPY error (SQL error, timeout), a storage
 * error, or the stop reason from `signal`. The uploads are aborted (by us: lib-storage's own abort
 * would replace the real error with AbortMultipartUpload's, e.g. s3rver's 405) and the connection
 * is released with the error, so the pool destroys it and Postgres ends the backend. Before it
 * throws, it waits for every S3 request of the uploads to settle and then removes what they wrote
 * (the objects under the file keys, which are this attempt's alone, and the multipart uploads):
 * aborting only makes lib-storage's done() reject, and a PutObject or CompleteMultipartUpload
 * already sent still lands afterwards.
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

/** A file outgrew what one upload can hold: running it again would fail again. */
export class ObjectTooLarge extends Error {
  override name = 'ObjectTooLarge';
  constructor(readonly maxBytes: number) {
    super(
      `a file of the export is larger than one upload can hold (${maxBytes} bytes: ${MAX_UPLOAD_PARTS} parts of ` +
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
  /** The object key of file `fileNumber` (from 1), given its extension; each key must be this attempt's alone. */
  fileKey(fileNumber: number, extension: string): string;
  select: string;
  /** The export's format, compression and formula guard. */
  encoder: ExportEncoder;
  /** The Content-Disposition of file `fileNumber`, given its extension. */
  contentDisposition(fileNumber: number, extension: string): string;
  partSizeBytes: number;
  queueSize: number;
  /** A file ends after the first batch of rows that brings it to this many bytes (EXPORT_MAX_FILE_MIB). */
  maxFileBytes: number;
  /** The largest object allowed: maxObjectBytes(partSizeBytes) unless a test sets it lower. */
  maxBytes?: number;
  /** Aborting it stops the export at once; its reason is the error thrown. */
  signal: AbortSignal;
  /** Progress is read from it (bytes, rows) while the export runs. */
  progress?: ExportProgress;
  logger: Logger;
}

/** One file an attempt wrote: its key, its data rows and its size. */
export interface WrittenFile {
  key: string;
  rows: number;
  bytes: number;
}

/** A file being written: its encoder, its byte count and its upload. */
interface FileUpload extends OpenFile {
  key: string;
  encoder: FileEncoder;
  upload: StreamUpload;
}

/**
 * The COPY into files: returns them in row order, with the rows of each counted from the stream
 * by its encoder; their sum is checked against the COPY's own row count.
 */
export async function copyToObject(options: CopyToObjectOptions): Promise<{ rows: number; bytes: number; files: WrittenFile[] }> {
  const { signal, logger } = options;
  signal.throwIfAborted();
  const client = await options.pool.connect();
  const progress = options.progress ?? new ExportProgress();
  const rowReader = options.encoder.rowReader();
  const maxBytes = options.maxBytes ?? maxObjectBytes(options.partSizeBytes);
  const files: FileUpload[] = [];
  let copy: CopyToStreamQuery | undefined;
  let splitter: FileSplitter | undefined;
  // The first failure wins; a holder object, as it is set from callbacks.
  const failed: { first?: { error: unknown } } = {};
  let rejectFailed: (error: unknown) => void = () => undefined;
  const failure = new Promise<never>((_resolve, reject) => {
    rejectFailed = reject;
  });
  failure.catch(() => undefined);

  const fail = (error: unknown) => {
    if (failed.first) return;
    failed.first = { error };
    rejectFailed(error);
    copy?.destroy();
    rowReader.destroy();
    splitter?.destroy();
    for (const file of files) {
      file.encoder.input.destroy();
      file.encoder.output.destroy();
      file.upload.abort();
    }
  };
  const onAbort = () => fail(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });

  const rowsSoFar = () => files.reduce((sum, file) => sum + file.encoder.rows, 0);
  const openFile = (fileNumber: number): OpenFile => {
    const encoder = options.encoder.newFile();
    const key = options.fileKey(fileNumber, encoder.extension);
    // Stop as soon as a file outgrows what one upload can hold, not after uploading it all.
    const counter = new FileBytes(progress, rowsSoFar, maxBytes, fail);
    encoder.input.on('error', fail);
    encoder.output.on('error', fail);
    counter.on('error', () => undefined);
    encoder.output.pipe(counter);
    const upload = uploadStream(options.s3, {
      bucket: options.bucket,
      key,
      body: counter,
      contentType: encoder.contentType,
      contentDisposition: options.contentDisposition(fileNumber, encoder.extension),
      partSizeBytes: options.partSizeBytes,
      queueSize: options.queueSize,
    });
    upload.done.catch(fail);
    const file: FileUpload = {
      key,
      encoder,
      upload,
      input: encoder.input,
      get bytes() {
        return counter.bytes;
      },
    };
    files.push(file);
    return file;
  };

  try {
    signal.throwIfAborted();
    const finished = copyFinished(client);
    copy = client.query(copyOut(options.encoder.copyStatement(options.select)));
    // Piped, not pipeline(): pipeline() would destroy the COPY stream with the upload's own
    // complaint about its body (an AbortError) and hide which side failed first. Here the COPY's
    // 'error' is always a Postgres or connection error, an encoder's its own (a row it cannot read
    // or write); the uploads report their failures through done; a file's own 'error' after its
    // upload gave up on it says nothing new.
    copy.on('error', (error: Error) => fail(error instanceof pg.DatabaseError ? new CopyQueryError(error) : error));
    rowReader.on('error', fail);
    splitter = new FileSplitter({ maxFileBytes: options.maxFileBytes, openFile });
    splitter.on('error', fail);
    copy.pipe(rowReader).pipe(splitter);
    let uploaded = false;
    try {
      await Promise.race([finishedWriting(splitter), failure]);
      await Promise.race([Promise.all(files.map((file) => file.upload.done)), failure]);
      uploaded = true;
    } catch (error) {
      fail(error);
    }
    // Complete uploads mean the whole COPY arrived: a stop requested from here on (or in the
    // instant before) is for the caller to settle against the export's row, not an error.
    if (!uploaded) throw failed.first!.error;
    signal.removeEventListener('abort', onAbort);
    // The stream ends at CopyDone; rowCount is set by the CommandComplete that follows it.
    await finished;
    const written = files.map((file) => ({ key: file.key, rows: file.encoder.rows, bytes: file.bytes }));
    const rows = written.reduce((sum, file) => sum + file.rows, 0);
    // Two counts of one thing: the rows the files hold, and the rows Postgres says it sent.
    if (rows !== copy.rowCount) throw new Error(`the files hold ${rows} rows but the COPY sent ${copy.rowCount}`);
    client.release();
    progress.rows = rows;
    return { rows, bytes: written.reduce((sum, file) => sum + file.bytes, 0), files: written };
  } catch (error) {
    const reported = failed.first ? failed.first.error : error;
    client.release(reported instanceof Error ? reported : new Error(String(reported)));
    for (const file of files) await discardAttempt(file.upload, file.key, logger);
    throw reported;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Resolves once the splitter has written every batch and ended its last file. */
function finishedWriting(splitter: FileSplitter): Promise<void> {
  return new Promise((resolve, reject) => {
    splitter.once('finish', resolve);
    splitter.once('error', reject);
  });
}

/**
 * Counts the bytes of one file on their way to storage (exact: this is the object's size) and
 * keeps the attempt's progress; reports a file that outgrows one upload (the caller stops it).
 */
class FileBytes extends Transform {
  bytes = 0;

  constructor(
    private readonly progress: ExportProgress,
    private readonly rowsSoFar: () => number,
    private readonly maxBytes: number,
    private readonly tooLarge: (error: ObjectTooLarge) => void,
  ) {
    // Chunks go on to the upload one by one, as objects: lib-storage reads its body with an async
    // iterator, and from a byte stream that read joins every chunk buffered into a new Buffer (a
    // copy of most of the export) before lib-storage copies them again into parts.
    super({ readableObjectMode: true, readableHighWaterMark: 2 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.progress.bytes += chunk.length;
    this.progress.rows = this.rowsSoFar();
    if (this.bytes > this.maxBytes) {
      this.tooLarge(new ObjectTooLarge(this.maxBytes));
      callback();
    } else {
      callback(null, chunk);
    }
  }

  override _flush(callback: TransformCallback): void {
    this.progress.rows = this.rowsSoFar();
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
