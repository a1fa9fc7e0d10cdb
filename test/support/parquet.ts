import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

/** A row of an export as a reader compares it: the timestamp in microseconds since the epoch, the ids and the value. */
export type ComparableRow = [bigint, string, string, number];

/** `2026-01-31T23:05:00.000000Z` (the CSV's timestamp) in microseconds since the epoch. */
export function csvMicros(timestamp: string): bigint {
  const [seconds, fraction] = timestamp.replace('Z', '').split('.');
  return BigInt(Date.parse(`${seconds}Z`)) * 1000n + BigInt(fraction!);
}

/** The CSV's data rows (parsed, header removed) as comparable rows. */
export function comparableCsvRows(records: string[][]): ComparableRow[] {
  return records.map((record) => [csvMicros(record[0]!), record[1]!, record[5]!, Number(record[6])]);
}

/** The rows of one Parquet file, read by DuckDB (an independent reader), in file order. */
export async function readParquetRows(file: Buffer): Promise<ComparableRow[]> {
  const scratch = mkdtempSync(path.join(tmpdir(), 'parquet-'));
  const instance = await DuckDBInstance.create(':memory:');
  const duck = await instance.connect();
  try {
    const at = path.join(scratch, 'file.parquet');
    writeFileSync(at, file);
    const read = await duck.runAndReadAll(`SELECT epoch_us("timestamp") AS us, device_id, metric, value FROM read_parquet('${at}')`);
    return read.getRowObjects().map((row) => [row.us as bigint, row.device_id as string, row.metric as string, row.value as number]);
  } finally {
    duck.closeSync();
    instance.closeSync();
    rmSync(scratch, { recursive: true, force: true });
  }
}
