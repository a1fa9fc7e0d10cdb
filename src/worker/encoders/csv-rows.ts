import { Transform, type TransformCallback } from 'node:stream';
import type { CsvRows } from './rows';

const QUOTE = 0x22;
const NEWLINE = 0x0a;

/**
 * Cuts the CSV that COPY writes (without header) into whole rows: each batch it passes on is the
 * text of some complete rows and how many, so that a file can end after any batch. A row ends at
 * a newline outside quotes; Postgres quotes any field holding a quote or a newline and doubles
 * inner quotes, so toggling on every quote tracks it. The scan uses Buffer.indexOf, as most
 * chunks hold no quote at all.
 */
export class CsvRowReader extends Transform {
  #inQuotes = false;
  /** The bytes of the row not yet complete. */
  #partial: Buffer[] = [];

  constructor() {
    super({ readableObjectMode: true, readableHighWaterMark: 2 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const { rows, firstEnd, end } = this.#scan(chunk);
    if (rows === 0) {
      this.#partial.push(chunk);
      callback();
      return;
    }
    if (this.#partial.length > 0) {
      // Only the row the last chunks began is joined (a copy of one row, not of the chunk): it
      // goes on as a batch of its own, and the chunk's other rows as they are.
      this.push({ text: Buffer.concat([...this.#partial, chunk.subarray(0, firstEnd)]), rows: 1 } satisfies CsvRows);
      this.#partial = [];
      if (rows > 1) this.push({ text: chunk.subarray(firstEnd, end), rows: rows - 1 } satisfies CsvRows);
    } else {
      this.push({ text: chunk.subarray(0, end), rows } satisfies CsvRows);
    }
    if (end < chunk.length) this.#partial.push(chunk.subarray(end));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    callback(this.#partial.some((part) => part.length > 0) ? new Error('the COPY ended in the middle of a CSV row') : null);
  }

  /** How many rows end in the chunk, and the offsets just after the first and the last of them. */
  #scan(chunk: Buffer): { rows: number; firstEnd: number; end: number } {
    let rows = 0;
    let firstEnd = 0;
    let end = 0;
    let at = 0;
    while (at < chunk.length) {
      if (this.#inQuotes) {
        const close = chunk.indexOf(QUOTE, at);
        if (close === -1) break;
        this.#inQuotes = false;
        at = close + 1;
        continue;
      }
      const quote = chunk.indexOf(QUOTE, at);
      const stop = quote === -1 ? chunk.length : quote;
      for (let nl = chunk.indexOf(NEWLINE, at); nl !== -1 && nl < stop; nl = chunk.indexOf(NEWLINE, nl + 1)) {
        if (rows++ === 0) firstEnd = nl + 1;
        end = nl + 1;
      }
      if (quote === -1) break;
      this.#inQuotes = true;
      at = quote + 1;
    }
    return { rows, firstEnd, end };
  }
}
