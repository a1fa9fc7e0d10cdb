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
    const { rows, end } = this.#scan(chunk);
    if (rows === 0) {
      this.#partial.push(chunk);
      return callback();
    }
    const text = Buffer.concat([...this.#partial, chunk.subarray(0, end)]);
    this.#partial = end < chunk.length ? [chunk.subarray(end)] : [];
    callback(null, { text, rows } satisfies CsvRows);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#partial.some((part) => part.length > 0)) return callback(new Error('the COPY ended in the middle of a CSV row'));
    callback();
  }

  /** How many rows end in the chunk, and the offset just after the last of them. */
  #scan(chunk: Buffer): { rows: number; end: number } {
    let rows = 0;
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
        rows++;
        end = nl + 1;
      }
      if (quote === -1) break;
      this.#inQuotes = true;
      at = quote + 1;
    }
    return { rows, end };
  }
}
