/**
 * What the row reader of an export hands to the encoder of each of its files: whole rows only, so
 * that a file can end after any batch and the next one start with a fresh encoder.
 */

/** csv: the text of some complete rows, as COPY wrote them, and how many they are. */
export interface CsvRows {
  text: Buffer;
  rows: number;
}

/** jsonl, parquet: one row of the export, decoded from COPY's binary format (the CSV's columns). */
export interface ReadingRow {
  /** ISO 8601 in UTC with microseconds, as in the CSV: 2026-01-31T23:05:00.000000Z. */
  timestamp: string;
  deviceId: string;
  deviceName: string;
  spaceId: string | null;
  spaceName: string | null;
  metric: string;
  value: number;
}
