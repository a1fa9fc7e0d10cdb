import { once } from 'node:events';
import { Writable } from 'node:stream';

const QUOTE = 0x22;
const NEWLINE = 0x0a;

/** An export's counts while it runs, for its heartbeat: data rows and CSV bytes read so far. */
export class CopyProgress {
  rows = 0;
  bytes = 0;
}

/** A file the splitter writes into: its encoder's input, and how many bytes the file has so far. */
export interface OpenFile {
  input: Writable;
  /** Bytes of the file put out so far (by its encoder). */
  readonly bytes: number;
}

export interface CsvFileSplitterOptions {
  /** A file ends at the first record end once it holds this many bytes. */
  maxFileBytes: number;
  /** Opens file `fileNumber` (from 1) for records; `header` is the CSV's header line. */
  openFile(header: Buffer, fileNumber: number): OpenFile;
  progress: CopyProgress;
}

/**
 * Takes the COPY's CSV (its header line, then the records) and writes the records into files:
 * each file gets the header (through its encoder) and whole records, in order, and ends at the
 * first record end once it holds `maxFileBytes` (the larger of the CSV bytes written into it and
 * the bytes its encoder put out), so that a file is at most that size plus one record plus what
 * its encoder still buffers. The next record opens the next file; there is always at least one
 * file (an export with no rows is its header alone).
 *
 * A record ends at a newline outside quotes. Postgres quotes any field holding a quote or a
 * newline and doubles inner quotes, so toggling on every quote tracks it. The scan uses
 * Buffer.indexOf, as most chunks hold no quote at all. The records counted are the rows of each
 * file, exactly.
 */
export class CsvFileSplitter extends Writable {
  /** Data rows of each file so far, in file order. */
  readonly fileRows: number[] = [];
  readonly #options: CsvFileSplitterOptions;
  readonly #headerParts: Buffer[] = [];
  #header: Buffer | undefined;
  #file: OpenFile | undefined;
  #fileInputBytes = 0;
  #inQuotes = false;

  constructor(options: CsvFileSplitterOptions) {
    super();
    this.#options = options;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#split(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#header === undefined) this.#header = Buffer.concat(this.#headerParts);
    if (this.fileRows.length === 0) this.#openNextFile();
    this.#file?.input.end();
    this.#file = undefined;
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#file?.input.destroy(error ?? undefined);
    callback(error);
  }

  async #split(chunk: Buffer): Promise<void> {
    this.#options.progress.bytes += chunk.length;
    let at = 0;
    if (this.#header === undefined) {
      const end = chunk.indexOf(NEWLINE);
      if (end === -1) {
        this.#headerParts.push(chunk);
        return;
      }
      this.#headerParts.push(chunk.subarray(0, end + 1));
      this.#header = Buffer.concat(this.#headerParts);
      this.#openNextFile();
      at = end + 1;
    }
    // Bytes from `from` on are not yet written to a file.
    let from = at;
    while (at < chunk.length) {
      if (this.#inQuotes) {
        const close = chunk.indexOf(QUOTE, at);
        if (close === -1) break;
        this.#inQuotes = false;
        at = close + 1;
        continue;
      }
      const quote = chunk.indexOf(QUOTE, at);
      const end = quote === -1 ? chunk.length : quote;
      for (let nl = chunk.indexOf(NEWLINE, at); nl !== -1 && nl < end; nl = chunk.indexOf(NEWLINE, nl + 1)) {
        const file = this.#file ?? this.#openNextFile();
        this.fileRows[this.fileRows.length - 1]!++;
        this.#options.progress.rows++;
        if (Math.max(this.#fileInputBytes + nl + 1 - from, file.bytes) >= this.#options.maxFileBytes) {
          await this.#put(file, chunk.subarray(from, nl + 1));
          file.input.end();
          this.#file = undefined;
          from = nl + 1;
        }
      }
      if (quote === -1) break;
      this.#inQuotes = true;
      at = quote + 1;
    }
    if (from < chunk.length) await this.#put(this.#file ?? this.#openNextFile(), chunk.subarray(from));
  }

  #openNextFile(): OpenFile {
    const header = this.#header!;
    this.#file = this.#options.openFile(header, this.fileRows.length + 1);
    this.fileRows.push(0);
    this.#fileInputBytes = header.length;
    return this.#file;
  }

  /** Writes into the file, waiting while its encoder is full (backpressure reaches the COPY). */
  async #put(file: OpenFile, bytes: Buffer): Promise<void> {
    this.#fileInputBytes += bytes.length;
    if (!file.input.write(bytes)) await once(file.input, 'drain');
  }
}
