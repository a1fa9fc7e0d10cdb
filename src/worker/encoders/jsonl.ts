import { Transform, type TransformCallback } from 'node:stream';
import type { ReadingRow } from './rows';

/**
 * One JSON Lines file: a JSON object per row with the CSV's columns as keys, in the CSV's order,
 * each line ended by `\n`, UTF-8. JSON.stringify escapes the strings (a name's newline is `\n`
 * inside its string, never a line end). `value` is a JSON number that reads back as the same
 * double; NaN and ±Infinity, which JSON cannot spell, are written as null. Negative zero keeps
 * its sign (-0), as in the CSV.
 */
export class JsonlFileWriter extends Transform {
  rows = 0;

  constructor() {
    super({ writableObjectMode: true, writableHighWaterMark: 2 });
  }

  override _transform(batch: ReadingRow[], _encoding: BufferEncoding, callback: TransformCallback): void {
    let lines = '';
    for (const row of batch) lines += jsonLine(row);
    this.rows += batch.length;
    callback(null, Buffer.from(lines, 'utf8'));
  }
}

export function jsonLine(row: ReadingRow): string {
  return (
    `{"timestamp":${JSON.stringify(row.timestamp)},"device_id":"${row.deviceId}","device_name":${JSON.stringify(row.deviceName)},` +
    `"space_id":${row.spaceId === null ? 'null' : `"${row.spaceId}"`},"space_name":${JSON.stringify(row.spaceName)},` +
    `"metric":${JSON.stringify(row.metric)},"value":${jsonNumber(row.value)}}\n`
  );
}

function jsonNumber(value: number): string {
  if (!Number.isFinite(value)) return 'null';
  return Object.is(value, -0) ? '-0' : String(value);
}
