import { Transform, type TransformCallback } from 'node:stream';
import { CSV_COLUMNS } from '../../exports/compile-query';
import type { ReadingRow } from './rows';

/**
 * Decodes what `COPY (...) TO STDOUT WITH (FORMAT binary)` writes for the export's SELECT into
 * rows, a batch per chunk. The format: an 11-byte signature, flags and a header extension, then
 * per row a 16-bit field count and per field a 32-bit length (-1 for NULL) and its bytes, then a
 * field count of -1. Fields are in each type's binary form: text as UTF-8, uuid as 16 bytes,
 * double precision as an IEEE 754 big-endian double. Any other shape is an error, never a guess.
 */

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const COLUMNS = CSV_COLUMNS.length;
const NULL_LENGTH = -1;

export class BinaryRowReader extends Transform {
  #pending: Buffer | undefined;
  #headerRead = false;
  #ended = false;

  constructor() {
    // Few batches in flight: rows waiting in a queue outlive young-generation GCs and pile up.
    super({ readableObjectMode: true, readableHighWaterMark: 2 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const buffer = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    try {
      let at = this.#headerRead ? 0 : this.#readHeader(buffer);
      if (at === -1) {
        this.#pending = buffer;
        callback();
        return;
      }
      const rows: ReadingRow[] = [];
      while (!this.#ended) {
        const next = this.#readRow(buffer, at, rows);
        if (next === -1) break;
        at = next;
      }
      if (this.#ended && at < buffer.length) throw new Error('the COPY sent data after its end');
      this.#pending = at < buffer.length ? buffer.subarray(at) : undefined;
      callback(null, rows.length > 0 ? rows : undefined);
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    callback(!this.#ended || this.#pending ? new Error('the COPY ended before its binary trailer') : null);
  }

  /** The offset of the first row, or -1 while the header is incomplete. */
  #readHeader(buffer: Buffer): number {
    if (buffer.length < SIGNATURE.length + 8) return -1;
    if (!buffer.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('the COPY did not start with the binary signature');
    const extension = buffer.readUInt32BE(SIGNATURE.length + 4);
    const start = SIGNATURE.length + 8 + extension;
    if (buffer.length < start) return -1;
    this.#headerRead = true;
    return start;
  }

  /** Reads one row (or the trailer) at `at` into rows; the offset after it, or -1 if incomplete. */
  #readRow(buffer: Buffer, at: number, rows: ReadingRow[]): number {
    if (buffer.length < at + 2) return -1;
    const fields = buffer.readInt16BE(at);
    if (fields === -1) {
      this.#ended = true;
      return at + 2;
    }
    if (fields !== COLUMNS) throw new Error(`a COPY row has ${fields} fields, not ${COLUMNS}`);
    const spans: Array<[number, number] | null> = [];
    let offset = at + 2;
    for (let i = 0; i < COLUMNS; i++) {
      if (buffer.length < offset + 4) return -1;
      const length = buffer.readInt32BE(offset);
      offset += 4;
      if (length === NULL_LENGTH) {
        spans.push(null);
        continue;
      }
      if (buffer.length < offset + length) return -1;
      spans.push([offset, offset + length]);
      offset += length;
    }
    rows.push({
      timestamp: text(buffer, required(spans[0], 'timestamp')),
      deviceId: uuid(buffer, required(spans[1], 'device_id')),
      deviceName: text(buffer, required(spans[2], 'device_name')),
      spaceId: spans[3] ? uuid(buffer, spans[3]) : null,
      spaceName: spans[4] ? text(buffer, spans[4]) : null,
      metric: text(buffer, required(spans[5], 'metric')),
      value: double(buffer, required(spans[6], 'value')),
    });
    return offset;
  }
}

function required(span: [number, number] | null | undefined, column: string): [number, number] {
  if (!span) throw new Error(`a COPY row has no ${column}`);
  return span;
}

function text(buffer: Buffer, [from, to]: [number, number]): string {
  return buffer.toString('utf8', from, to);
}

function uuid(buffer: Buffer, [from, to]: [number, number]): string {
  if (to - from !== 16) throw new Error(`a uuid of ${to - from} bytes`);
  const hex = buffer.toString('hex', from, to);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function double(buffer: Buffer, [from, to]: [number, number]): number {
  if (to - from !== 8) throw new Error(`a double precision of ${to - from} bytes`);
  return buffer.readDoubleBE(from);
}
