import { Transform, type TransformCallback } from 'node:stream';
import { CSV_HEADER } from '../../exports/formats';
import type { CsvRows } from './rows';

/**
 * One CSV file: the header line, then the rows as COPY wrote them, unchanged (formula guarding,
 * when asked, is already in them: src/exports/formats.ts). Counts the rows it writes.
 */
export class CsvFileWriter extends Transform {
  rows = 0;
  #headerWritten = false;

  constructor() {
    super({ writableObjectMode: true, writableHighWaterMark: 2 });
  }

  // The header goes out with the first rows (or alone at the end of an empty file), so that the
  // bytes written and the rows written move together.
  override _transform(batch: CsvRows, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.rows += batch.rows;
    callback(null, this.#headerWritten ? batch.text : Buffer.concat([this.#header(), batch.text]));
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.#headerWritten ? undefined : this.#header());
  }

  #header(): Buffer {
    this.#headerWritten = true;
    return Buffer.from(CSV_HEADER);
  }
}
