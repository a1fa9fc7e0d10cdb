import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { BinaryRowReader } from '../../src/worker/encoders/binary-rows';
import type { ReadingRow } from '../../src/worker/encoders/rows';
import { chunked } from '../support/chunks';

/**
 * BinaryRowReader decodes COPY's binary format (header, rows of length-prefixed fields, trailer)
 * into rows, however the bytes are cut into chunks; a stream of any other shape is an error.
 */

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}
function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
const field = (bytes: Buffer | null) => (bytes === null ? int32(-1) : Buffer.concat([int32(bytes.length), bytes]));
const uuidBytes = (uuid: string) => Buffer.from(uuid.replaceAll('-', ''), 'hex');
function double(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(value);
  return b;
}

/** What Postgres writes for these rows, built here from the format's definition. */
function copyBinary(rows: ReadingRow[], headerExtension = Buffer.alloc(0)): Buffer {
  const parts = [SIGNATURE, int32(0), int32(headerExtension.length), headerExtension];
  for (const row of rows) {
    parts.push(
      int16(7),
      field(Buffer.from(row.timestamp)),
      field(uuidBytes(row.deviceId)),
      field(Buffer.from(row.deviceName)),
      field(row.spaceId === null ? null : uuidBytes(row.spaceId)),
      field(row.spaceName === null ? null : Buffer.from(row.spaceName)),
      field(Buffer.from(row.metric)),
      field(double(row.value)),
    );
  }
  parts.push(int16(-1));
  return Buffer.concat(parts);
}

async function decode(chunks: Buffer[]): Promise<ReadingRow[]> {
  const reader = new BinaryRowReader();
  const rows: ReadingRow[] = [];
  reader.on('data', (batch: ReadingRow[]) => rows.push(...batch));
  await new Promise<void>((resolve, reject) => {
    Readable.from(chunks, { objectMode: false }).pipe(reader).on('end', resolve).on('error', reject);
  });
  return rows;
}

const text = fc.string({ unit: fc.constantFrom('a', 'é', '😀', ',', '"', '\n', '\\', '\t', '=', '1'), maxLength: 12 });
const row: fc.Arbitrary<ReadingRow> = fc.record({
  timestamp: fc.constant('2026-01-31T23:05:00.000001Z'),
  deviceId: fc.uuid(),
  deviceName: text,
  spaceId: fc.option(fc.uuid(), { nil: null }),
  spaceName: fc.option(text, { nil: null }),
  metric: text,
  value: fc.double(),
});

test('rows decode exactly across any chunking: text, uuids, NULLs and every double (NaN, -0, infinities)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(row, { maxLength: 15 }), fc.array(fc.nat(), { maxLength: 40 }), async (rows, cuts) => {
      const decoded = await decode(chunked(copyBinary(rows, Buffer.from('ext')), cuts));
      assert.deepEqual(
        decoded,
        rows.map((row) => ({ ...row })),
      );
    }),
    { numRuns: 300 },
  );
});

test('a stream of another shape is an error, never a guess', async () => {
  const one: ReadingRow = {
    timestamp: '2026-01-31T23:05:00.000000Z',
    deviceId: '6f1c1b8e-2f7a-4c1e-9d55-0a8f1e2b3c4d',
    deviceName: 'd',
    spaceId: null,
    spaceName: null,
    metric: 'm',
    value: 1,
  };
  const good = copyBinary([one]);
  await assert.rejects(decode([Buffer.from('timestamp,device_id\n')]), /binary signature/);
  await assert.rejects(decode([good.subarray(0, good.length - 2)]), /before its binary trailer/);
  await assert.rejects(decode([Buffer.concat([good, Buffer.from('x')])]), /after its end/);
  const sixFields = Buffer.from(good);
  sixFields.writeInt16BE(6, SIGNATURE.length + 8);
  await assert.rejects(decode([sixFields]), /has 6 fields, not 7/);
  const withFields = (deviceId: Buffer | null) =>
    Buffer.concat([
      SIGNATURE,
      int32(0),
      int32(0),
      int16(7),
      ...[Buffer.from(one.timestamp), deviceId, Buffer.from('d'), null, null, Buffer.from('m'), double(1)].map(field),
      int16(-1),
    ]);
  assert.equal((await decode([withFields(uuidBytes(one.deviceId))])).length, 1);
  await assert.rejects(decode([withFields(null)]), /has no device_id/);
  await assert.rejects(decode([withFields(Buffer.alloc(15))]), /uuid of 15 bytes/);
  assert.deepEqual(await decode([copyBinary([])]), []);
});
