import { EXPORT_COMPRESSIONS, EXPORT_FORMATS, type ExportCompression, type ExportFormat } from '../db/schema';
import { CSV_COLUMNS } from './compile-query';

/**
 * What kind of file an export writes: its format, the compression around it and, for csv, the
 * formula guard. The choices and their defaults are the database's (drizzle/0016, the enums in
 * src/db/schema.ts); this module says what each combination means for the file: the COPY that
 * feeds it, its extension and its Content-Type.
 *
 * - csv: Postgres writes the CSV (COPY ... FORMAT csv), byte for byte what it always was.
 * - jsonl, parquet: Postgres sends its rows in COPY's binary format and the worker writes the
 *   file (src/worker/encoders).
 * - gzip, zstd: wrap a csv or jsonl file whole (`.csv.gz`, `.jsonl.zst`); a Parquet file takes
 *   them as its column codec instead and stays `.parquet`.
 */

export { EXPORT_COMPRESSIONS, EXPORT_FORMATS, type ExportCompression, type ExportFormat };

export interface ExportEncoding {
  format: ExportFormat;
  compression: ExportCompression;
  /** csv only: cells a spreadsheet would run as a formula get a leading `'`. */
  formulaGuard: boolean;
}

/** What an export gets when its request names none of these (the contract's plain CSV). */
export const DEFAULT_ENCODING: ExportEncoding = { format: 'csv', compression: 'none', formulaGuard: false };

/** The request's choices that cannot go together, by field (empty when they can). */
export function encodingProblems(encoding: ExportEncoding): Record<string, string[]> {
  if (encoding.formulaGuard && encoding.format !== 'csv') {
    return { formula_guard: [`Only a csv export can guard formulas; this export's format is ${encoding.format}.`] };
  }
  return {};
}

const FORMAT_EXTENSION: Record<ExportFormat, string> = { csv: 'csv', jsonl: 'jsonl', parquet: 'parquet' };
const COMPRESSION_EXTENSION: Record<ExportCompression, string> = { none: '', gzip: '.gz', zstd: '.zst' };

/** Whether the compression wraps the whole file (csv, jsonl) rather than Parquet's columns. */
export function wrapsWholeFile(encoding: ExportEncoding): boolean {
  return encoding.format !== 'parquet' && encoding.compression !== 'none';
}

/** The file name's extension, without the leading dot: csv, csv.gz, jsonl.zst, parquet, ... */
export function fileExtension(encoding: ExportEncoding): string {
  const base = FORMAT_EXTENSION[encoding.format];
  return wrapsWholeFile(encoding) ? `${base}${COMPRESSION_EXTENSION[encoding.compression]}` : base;
}

const FORMAT_CONTENT_TYPE: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  jsonl: 'application/jsonl',
  parquet: 'application/vnd.apache.parquet',
};
const COMPRESSED_CONTENT_TYPE: Record<Exclude<ExportCompression, 'none'>, string> = {
  gzip: 'application/gzip',
  zstd: 'application/zstd',
};

/**
 * The stored object's Content-Type. A compressed file is what the client downloads (a .csv.gz
 * is a gzip file), so it is typed as the compressed file and has no Content-Encoding: HTTP
 * clients would otherwise decompress it silently and the bytes saved would not match total_bytes.
 */
export function contentType(encoding: ExportEncoding): string {
  if (encoding.compression === 'none' || encoding.format === 'parquet') return FORMAT_CONTENT_TYPE[encoding.format];
  return COMPRESSED_CONTENT_TYPE[encoding.compression];
}

/** The header line of every CSV file: the column names, as Postgres's HEADER option writes them. */
export const CSV_HEADER = `${CSV_COLUMNS.join(',')}\n`;

/** The text columns a spreadsheet could take for a formula: the names and the metric (user-supplied). */
const GUARDED_COLUMNS = new Set<string>(['device_name', 'space_name', 'metric']);

/**
 * OWASP's guard against CSV injection: a cell starting with = + - @ tab or carriage return is
 * written with a leading '. Done by Postgres, in the SELECT's outer projection, so that the CSV is
 * still COPY's own (quoting included). The inner SELECT's order holds: a subquery with ORDER BY is
 * never flattened into the outer query, which only projects its rows one by one.
 */
function guardFormulas(select: string): string {
  const columns = CSV_COLUMNS.map((column) =>
    GUARDED_COLUMNS.has(column)
      ? `CASE WHEN left(q.${column}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || q.${column} ELSE q.${column} END AS ${column}`
      : `q."${column}"`,
  );
  return `SELECT ${columns.join(', ')}\n  FROM (${select}) AS q`;
}

/**
 * The COPY statement that feeds the file. The CSV header is not Postgres's to write: every file of
 * an export starts with it (src/worker/encoders/csv.ts), and it is the same line HEADER wrote.
 */
export function copyStatement(select: string, encoding: ExportEncoding): string {
  if (encoding.format === 'csv') {
    const rows = encoding.formulaGuard ? guardFormulas(select) : select;
    return `COPY (${rows}) TO STDOUT WITH (FORMAT csv)`;
  }
  return `COPY (${select}) TO STDOUT WITH (FORMAT binary)`;
}
