import { pipeline, type Readable, type Transform, type Writable } from 'node:stream';
import {
  contentType,
  copyStatement,
  EXPORT_COMPRESSIONS,
  EXPORT_FORMATS,
  type ExportEncoding,
  fileExtension,
  wrapsWholeFile,
} from '../../exports/formats';
import { BinaryRowReader } from './binary-rows';
import { fileCompressor } from './compression';
import { CsvFileWriter } from './csv';
import { CsvRowReader } from './csv-rows';
import { JsonlFileWriter } from './jsonl';
import { ParquetFileWriter } from './parquet';

/**
 * How an export turns its COPY into files, given its format, compression and formula guard:
 *
 *     COPY output -> rowReader() (one per export: whole rows) -> newFile() (one per file: bytes)
 *
 * The row reader cuts the COPY into batches of whole rows; each file's encoder turns batches into
 * the bytes of one complete file of the format (a CSV with its header, a Parquet file with its
 * footer), compressed as asked, and counts the rows it wrote. A new file starts with a fresh
 * encoder after any batch.
 */

export interface FileEncoder {
  /** Batches of rows in. */
  input: Writable;
  /** The file's bytes out. An error on either side destroys both. */
  output: Readable;
  /** The data rows written so far (the header is not one), counted from the rows themselves. */
  readonly rows: number;
  contentType: string;
  /** The file name's extension, without the leading dot. */
  extension: string;
}

export interface ExportEncoder {
  /** The COPY to run for the export's SELECT. */
  copyStatement(select: string): string;
  /** Reads the COPY's output into whole rows (once per export). */
  rowReader(): Transform;
  newFile(): FileEncoder;
}

/**
 * A format or compression this worker does not know: a newer version's, stored through a newer
 * API while this worker still runs (a rolling upgrade). Thrown before the COPY starts; the attempt
 * fails as `internal` and is retried, so that a worker that knows it can take the export.
 */
class UnknownEncoding extends Error {
  override name = 'UnknownEncoding';
}

export function exportEncoder(encoding: ExportEncoding): ExportEncoder {
  // The claim reads format and compression as the database's enums, which a later migration may
  // have extended; the type says only what this code's schema knows.
  const known = (choices: readonly string[], value: string) => choices.includes(value);
  if (!known(EXPORT_FORMATS, encoding.format) || !known(EXPORT_COMPRESSIONS, encoding.compression)) {
    throw new UnknownEncoding(
      `This worker does not know the export's format ${encoding.format} with compression ${encoding.compression} (a newer version's); the export is retried for a worker that does.`,
    );
  }
  return {
    copyStatement: (select) => copyStatement(select, encoding),
    rowReader: () => (encoding.format === 'csv' ? new CsvRowReader() : new BinaryRowReader()),
    newFile: () => newFileEncoder(encoding),
  };
}

function newFileEncoder(encoding: ExportEncoding): FileEncoder {
  const writer = formatWriter(encoding);
  let output: Readable = writer;
  if (wrapsWholeFile(encoding) && encoding.compression !== 'none') {
    const compressor = fileCompressor(encoding.compression);
    // The pipeline only ties the two together; the errors are seen on the streams themselves.
    pipeline(writer, compressor, () => undefined);
    output = compressor;
  }
  return {
    input: writer,
    output,
    get rows() {
      return writer.rows;
    },
    contentType: contentType(encoding),
    extension: fileExtension(encoding),
  };
}

function formatWriter(encoding: ExportEncoding): CsvFileWriter | JsonlFileWriter | ParquetFileWriter {
  switch (encoding.format) {
    case 'csv':
      return new CsvFileWriter();
    case 'jsonl':
      return new JsonlFileWriter();
    case 'parquet':
      return new ParquetFileWriter(encoding.compression);
  }
}
