import { once } from 'node:events';
import { Writable } from 'node:stream';

/** A file the splitter writes into: its encoder's input, and how many bytes the file holds so far. */
export interface OpenFile {
  /** Batches of whole rows in (the file's encoder). */
  input: Writable;
  /** Bytes of the file put out so far by its encoder, compressed if it is: the object's size. */
  readonly bytes: number;
}

export interface FileSplitterOptions {
  /** A file ends after the first batch that brings it to this many bytes (EXPORT_MAX_FILE_MIB). */
  maxFileBytes: number;
  /** Opens file `fileNumber` (from 1): a fresh encoder of the export's format and its upload. */
  openFile(fileNumber: number): OpenFile;
}

/**
 * The stage after the export's row reader: writes its batches of whole rows, in order, into the
 * current file, and once that file holds maxFileBytes ends it after the batch, so the next batch
 * opens the next file. A file is therefore at most that size plus one batch plus what its encoder
 * still held when it was ended (a Parquet row group, a zstd block), each file is whole in its
 * format (its own encoder writes the CSV header, the Parquet footer, the end of the gzip or zstd
 * stream), and no row is ever split. There is always at least one file: an export without rows
 * is one file of its format with no rows (a CSV's header alone).
 *
 * The batches are opaque here: the row reader and the encoders agree on them (encoders/rows.ts).
 */
export class FileSplitter extends Writable {
  readonly #options: FileSplitterOptions;
  #file: OpenFile | undefined;
  #filesOpened = 0;

  constructor(options: FileSplitterOptions) {
    // Few batches in flight, as in the row reader: rows waiting in a queue pile up.
    super({ objectMode: true, highWaterMark: 2 });
    this.#options = options;
  }

  override _write(batch: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#put(batch).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const last = this.#file ?? (this.#filesOpened === 0 ? this.#openNextFile() : undefined);
    last?.input.end();
    this.#file = undefined;
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#file?.input.destroy(error ?? undefined);
    callback(error);
  }

  async #put(batch: unknown): Promise<void> {
    const file = this.#file ?? this.#openNextFile();
    // Waits while the encoder is full: backpressure reaches the COPY.
    if (!file.input.write(batch)) await once(file.input, 'drain');
    if (file.bytes >= this.#options.maxFileBytes) {
      file.input.end();
      this.#file = undefined;
    }
  }

  #openNextFile(): OpenFile {
    this.#filesOpened++;
    this.#file = this.#options.openFile(this.#filesOpened);
    return this.#file;
  }
}
