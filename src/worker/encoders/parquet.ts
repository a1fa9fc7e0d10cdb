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

export const ROW_GROUP_ROWS = 32_768;

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

/**
 * The rows of one group, by column. Timestamps sit in a typed array and the strings, which repeat
 * (a few devices, spaces and metrics over many rows), are shared: a group costs about 8 bytes per
 * cell rather than a string or a bigint per cell.
 */
class RowGroup {
  readonly timestamp = new BigInt64Array(ROW_GROUP_ROWS);
  readonly value = new Float64Array(ROW_GROUP_ROWS);
  readonly deviceId: string[] = [];
  readonly deviceName: string[] = [];
  readonly spaceId: Array<string | null> = [];
  readonly spaceName: Array<string | null> = [];
  readonly metric: string[] = [];
  size = 0;

  constructor(private readonly strings: StringPool) {}

  add(row: ReadingRow): void {
    const { strings } = this;
    this.timestamp[this.size] = timestampMicros(row.timestamp);
    this.value[this.size] = row.value;
    this.deviceId.push(strings.shared(row.deviceId));
    this.deviceName.push(strings.shared(row.deviceName));
    this.spaceId.push(row.spaceId === null ? null : strings.shared(row.spaceId));
    this.spaceName.push(row.spaceName === null ? null : strings.shared(row.spaceName));
    this.metric.push(strings.shared(row.metric));
    this.size++;
  }

  columns() {
    return [
      { name: 'timestamp', data: this.timestamp.subarray(0, this.size) },
      { name: 'device_id', data: this.deviceId },
      { name: 'device_name', data: this.deviceName },
      { name: 'space_id', data: this.spaceId },
      { name: 'space_name', data: this.spaceName },
      { name: 'metric', data: this.metric },
      { name: 'value', data: this.value.subarray(0, this.size) },
    ];
  }
}

/** One string object per distinct value, up to a bound (then it starts over: memory stays flat). */
class StringPool {
  static readonly MAX = 10_000;
  readonly #strings = new Map<string, string>();

  shared(value: string): string {
    const known = this.#strings.get(value);
    if (known !== undefined) return known;
    if (this.#strings.size >= StringPool.MAX) this.#strings.clear();
    this.#strings.set(value, value);
    return value;
  }
}

export class ParquetFileWriter extends Transform {
  rows = 0;
  readonly #bytes = new ByteWriter();
  readonly #parquet: ParquetWriter;
  readonly #strings = new StringPool();
  #group = new RowGroup(this.#strings);

  constructor(compression: ExportCompression) {
    super({ writableObjectMode: true, writableHighWaterMark: 2 });
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
    this.#group = new RowGroup(this.#strings);
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
