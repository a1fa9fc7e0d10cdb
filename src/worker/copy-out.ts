import type { ReadableOptions } from 'node:stream';
import { to as copyTo, type CopyToStreamQuery } from 'pg-copy-streams';

/**
 * pg-copy-streams' COPY TO stream with a cheaper reading of the CopyData messages.
 *
 * Postgres sends every row of a COPY as a message of its own (a 5-byte header, then the row). The
 * library reads each header through its buffer list, one call per field, and keeps each row as a
 * Buffer object of its own before it joins them: for an export of 2,000,000 rows that was about
 * a second of the worker's CPU per export, and as much again in garbage collection
 * (docs/performance.md, "Export path"). This reads the headers straight from each chunk the
 * socket gives and moves the rows of a chunk together within the chunk itself, over the headers
 * between them: a chunk costs no allocation and one pass of memmove whatever its number of rows.
 * The chunk is this stream's alone (the library detached pg's reader from the socket), and the
 * bytes it hands back to pg after the COPY lie beyond the rows, where nothing was moved.
 *
 * Everything else is the library's: how the stream takes the connection over from pg and hands it
 * back (its `_detach` takes the bytes left after the COPY from `_buffer`), backpressure, errors,
 * and `rowCount` from CommandComplete. Only `_parse`, its decoder, is replaced, with the same
 * rules: an ErrorResponse where a message starts hands the connection back to pg at once; CopyData
 * is data; CopyOutResponse, NoticeResponse, ParameterStatus and NotificationResponse are skipped;
 * any other message ends the COPY.
 */

const ERROR_RESPONSE = 0x45;
const COPY_DATA = 0x64;
const SKIPPED = new Set([
  0x48 /* CopyOutResponse */, 0x4e /* NoticeResponse */, 0x53 /* ParameterStatus */, 0x41 /* NotificationResponse */,
]);
const HEADER_BYTES = 5;

/** The library's internals this relies on (pg-copy-streams 7, copy-to.js). */
interface LibraryCopyTo extends CopyToStreamQuery {
  _buffer: { push(chunk: Buffer): void } | null;
  _detach(): void;
  _cleanup(): void;
}

type CopyToConstructor = new (text: string, options?: ReadableOptions) => LibraryCopyTo;

// The library exports only a factory; its class is the constructor of what the factory makes.
const LibraryCopyToStream = copyTo('SELECT 1').constructor as CopyToConstructor;

class CopyOutStream extends LibraryCopyToStream {
  /** The start of a header that the last chunk cut short (fewer than 5 bytes). */
  #partialHeader: Buffer | undefined;
  /** Bytes of the current message still to come in later chunks, and its type. */
  #remaining = 0;
  #code = 0;

  _parse(chunk: Buffer): boolean {
    let input = chunk;
    if (this.#partialHeader) {
      input = Buffer.concat([this.#partialHeader, chunk]);
      this.#partialHeader = undefined;
    }
    // The rows are written over the input they come from: `written` never passes `at`, as each
    // row read leaves its header behind.
    let written = 0;
    let at = 0;
    let ended = false;
    while (at < input.length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, input.length - at);
        if (this.#code === COPY_DATA) {
          if (written !== at) input.copyWithin(written, at, at + take);
          written += take;
        }
        at += take;
        this.#remaining -= take;
        if (this.#remaining > 0) break;
        if (this.#endsCopy()) {
          ended = true;
          break;
        }
        continue;
      }
      if (input.length - at < HEADER_BYTES) {
        this.#partialHeader = Buffer.from(input.subarray(at));
        break;
      }
      const code = input[at]!;
      if (code === ERROR_RESPONSE) {
        // pg reads the error and fails the query; the stream then errors through handleError.
        this._buffer?.push(input.subarray(at));
        this._detach();
        return false;
      }
      this.#code = code;
      this.#remaining = input.readUInt32BE(at + 1) - 4;
      at += HEADER_BYTES;
      if (this.#remaining === 0 && this.#endsCopy()) {
        ended = true;
        break;
      }
    }
    const drained = written > 0 ? this.push(input.subarray(0, written)) : true;
    if (ended) {
      // CommandComplete and ReadyForQuery follow: pg reads them, and the library's handlers.
      if (at < input.length) this._buffer?.push(input.subarray(at));
      this._detach();
      this.push(null);
      this._cleanup();
    }
    return drained;
  }

  #endsCopy(): boolean {
    return this.#code !== COPY_DATA && !SKIPPED.has(this.#code);
  }
}

/** `COPY ... TO STDOUT` as a readable stream of the rows' bytes, for `client.query(...)`. */
export function copyOut(text: string, options?: ReadableOptions): CopyToStreamQuery {
  return new CopyOutStream(text, options);
}
