import { Transform, type TransformCallback } from 'node:stream';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { ExportCompression } from '../../exports/formats';
import { PARQUET_COMPRESSORS } from './compression';
import type { ReadingRow } from './rows';

/**
 * One Parquet file, written with hyparquet-writer a row group at a time: the rows of a group are
 * gathered in column arrays (at most ROW_GROUP_ROWS), encoded, and passed on; the footer comes
 * last. Memory is one row group, whatever the size of the export.
 *
 * Columns, typed: `timestamp` INT64 TIMESTAMP(isAdjustedToUTC, MICROS); `device_id`, `space_id`
 * strings (not the UUID logical type, which Spark cannot read); `device_name`, `space_name`,
 * `metric` strings; `value` DOUBLE (NaN and ±Infinity kept). space_id and space_name are optional
 * (a device in no space), the others required.
 *
 * The codec: zstd -> ZSTD, gzip -> GZIP, none -> SNAPPY (every Parquet reader's default codec,
 * cheap to write and read; an uncompressed Parquet file would only be larger).
 */

export const ROW_GROUP_ROWS = 100_000;

const CODEC = { none: 'SNAPPY', gzip: 'GZIP', zstd: 'ZSTD' } as const;

const string = (name: string, required: boolean) =>
  ({
    name,
    type: 'BYTE_ARRAY',
    converted_type: 'UTF8',
    logical_type: { type: 'STRING' },
    repetition_type: required ? 'REQUIRED' : 'OPTIONAL',
  }) as const;

const SCHEMA = [
  { name: 'schema', num_children: 7 },
  {
    name: 'timestamp',
    type: 'INT64',
    converted_type: 'TIMESTAMP_MICROS',
    logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
    repetition_type: 'REQUIRED',
  },
  string('device_id', true),
  string('device_name', true),
  string('space_id', false),
  string('space_name', false),
  string('metric', true),
  { name: 'value', type: 'DOUBLE', repetition_type: 'REQUIRED' },
] as const;

/** The CSV's timestamp (YYYY-MM-DDTHH:MM:SS.ffffffZ) as microseconds since the Unix epoch, exactly. */
export function timestampMicros(timestamp: string): bigint {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z$/.exec(timestamp);
  if (!match) throw new Error(`not an export timestamp: ${timestamp}`);
  const [year, month, day, hour, minute, second, micros] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return BigInt(Date.UTC(year, month - 1, day, hour, minute, second)) * 1000n + BigInt(micros);
}

class RowGroup {
  timestamp: bigint[] = [];
  deviceId: string[] = [];
  deviceName: string[] = [];
  spaceId: Array<string | null> = [];
  spaceName: Array<string | null> = [];
  metric: string[] = [];
  value: number[] = [];

  get size(): number {
    return this.value.length;
  }

  add(row: ReadingRow): void {
    this.timestamp.push(timestampMicros(row.timestamp));
    this.deviceId.push(row.deviceId);
    this.deviceName.push(row.deviceName);
    this.spaceId.push(row.spaceId);
    this.spaceName.push(row.spaceName);
    this.metric.push(row.metric);
    this.value.push(row.value);
  }

  columns() {
    return [
      { name: 'timestamp', data: this.timestamp },
      { name: 'device_id', data: this.deviceId },
      { name: 'device_name', data: this.deviceName },
      { name: 'space_id', data: this.spaceId },
      { name: 'space_name', data: this.spaceName },
      { name: 'metric', data: this.metric },
      { name: 'value', data: Float64Array.from(this.value) },
    ];
  }
}

export class ParquetFileWriter extends Transform {
  rows = 0;
  readonly #bytes = new ByteWriter();
  readonly #parquet: ParquetWriter;
  #group = new RowGroup();

  constructor(compression: ExportCompression) {
    super({ writableObjectMode: true });
    this.#parquet = new ParquetWriter({
      writer: this.#bytes,
      schema: [...SCHEMA],
      codec: CODEC[compression],
      compressors: PARQUET_COMPRESSORS,
      createdBy: 'analytics-export-service (hyparquet-writer)',
    });
  }

  override _transform(batch: ReadingRow[], _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      for (const row of batch) {
        this.#group.add(row);
        if (this.#group.size === ROW_GROUP_ROWS) this.#writeGroup();
      }
      this.rows += batch.length;
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.#group.size > 0) this.#writeGroup();
      void this.#parquet.finish();
      this.#passOn();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  #writeGroup(): void {
    const group = this.#group;
    this.#group = new RowGroup();
    void this.#parquet.write({ columnData: group.columns(), rowGroupSize: group.size });
    this.#passOn();
  }

  /** Hands what the writer encoded so far downstream and empties its buffer (offsets stay counted). */
  #passOn(): void {
    if (this.#bytes.index === 0) return;
    this.push(Buffer.from(this.#bytes.getBytes()));
    this.#bytes.index = 0;
  }
}
