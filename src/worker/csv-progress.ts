import { Transform, type TransformCallback } from 'node:stream';

const QUOTE = 0x22;
const NEWLINE = 0x0a;

/**
 * Passes the COPY's CSV through unchanged while counting its bytes (exact: this is the object's
 * size) and its records (for progress only: the final row count is the COPY's own). A record
 * ends at a newline outside quotes; Postgres quotes any field holding a quote or a newline and
 * doubles inner quotes, so toggling on every quote tracks it. The scan uses Buffer.indexOf, as
 * most chunks hold no quote at all.
 */
export class CsvProgress extends Transform {
  bytes = 0;
  #lines = 0;
  #inQuotes = false;

  /** Data records so far (the header line is not one). */
  get rows(): number {
    return Math.max(0, this.#lines - 1);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.#count(chunk);
    callback(null, chunk);
  }

  #count(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#inQuotes) {
        const close = chunk.indexOf(QUOTE, at);
        if (close === -1) return;
        this.#inQuotes = false;
        at = close + 1;
        continue;
      }
      const quote = chunk.indexOf(QUOTE, at);
      const end = quote === -1 ? chunk.length : quote;
      for (let nl = chunk.indexOf(NEWLINE, at); nl !== -1 && nl < end; nl = chunk.indexOf(NEWLINE, nl + 1)) this.#lines++;
      if (quote === -1) return;
      this.#inQuotes = true;
      at = quote + 1;
    }
  }
}
