import { Transform, type TransformCallback } from 'node:stream';

/**
 * What each file of an export is written as. The COPY's rows arrive as CSV records; every file
 * gets an encoder of its own (newFileEncoder), so that each file is complete in its format: the
 * CSV encoder starts each file with the header. An encoder takes whole CSV records (never a
 * record cut in two) and puts out the file's bytes.
 */
export interface FileFormat {
  /** The file name's extension, without the dot. */
  extension: string;
  contentType: string;
  /** A fresh encoder for the next file; `header` is the COPY's header line, newline included. */
  newFileEncoder(header: Buffer): Transform;
}

/** CSV as the COPY writes it: the header first, then the records unchanged. */
class CsvFileEncoder extends Transform {
  constructor(header: Buffer) {
    super();
    this.push(header);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(null, chunk);
  }
}

export const CSV_FILE_FORMAT: FileFormat = {
  extension: 'csv',
  contentType: 'text/csv; charset=utf-8',
  newFileEncoder: (header) => new CsvFileEncoder(header),
};
