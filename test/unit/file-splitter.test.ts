import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { CSV_HEADER, type ExportEncoding } from '../../src/exports/formats';
import { exportEncoder, type FileEncoder } from '../../src/worker/encoders';
import { FileSplitter } from '../../src/worker/file-splitter';
import { parseCsv } from '../support/csv';
import { chunked, csvFieldText as field, csvRow } from '../support/chunks';

/**
 * FileSplitter writes the row reader's batches into files, each through a fresh encoder of the
 * export's format: the CSV that Postgres's COPY writes (a field holding a quote, a comma or a
 * newline is quoted, inner quotes doubled), cut into chunks anywhere, comes out as complete files
 * (each with the header; each a whole gzip stream when compressed) holding whole rows in order,
 * every file but the last at least the limit, and the rows of each counted exactly.
 */

interface SplitFile {
  encoder: FileEncoder;
  parts: Buffer[];
  ended: Promise<void>;
}

/** The chunks through the row reader and the splitter into in-memory files: each file's bytes and rows. */
async function split(chunks: Buffer[], maxFileBytes: number, encoding: ExportEncoding) {
  const encoders = exportEncoder(encoding);
  const files: SplitFile[] = [];
  const splitter = new FileSplitter({
    maxFileBytes,
    openFile(fileNumber) {
      assert.equal(fileNumber, files.length + 1);
      const encoder = encoders.newFile();
      const parts: Buffer[] = [];
      encoder.output.on('data', (chunk: Buffer) => parts.push(chunk));
      const ended = new Promise<void>((resolve, reject) => encoder.output.on('end', resolve).on('error', reject));
      files.push({ encoder, parts, ended });
      return {
        input: encoder.input,
        get bytes() {
          return parts.reduce((sum, part) => sum + part.length, 0);
        },
      };
    },
  });
  await new Promise<void>((resolve, reject) => {
    Readable.from(chunks, { objectMode: false })
      .pipe(encoders.rowReader())
      .on('error', reject)
      .pipe(splitter)
      .on('finish', resolve)
      .on('error', reject);
  });
  await Promise.all(files.map((file) => file.ended));
  return files.map((file) => ({ bytes: Buffer.concat(file.parts), rows: file.encoder.rows }));
}

for (const compression of ['none', 'gzip'] as const) {
  test(`csv, compression ${compression}: complete files of whole rows in order, each at least the limit but the last; rows counted exactly`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(field, { minLength: 1, maxLength: 4 }), { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.integer({ min: 1, max: 200 }),
        async (rows, cuts, maxFileBytes) => {
          const records = rows.map(csvRow);
          const files = await split(chunked(Buffer.from(records.join('')), cuts), maxFileBytes, {
            format: 'csv',
            compression,
            formulaGuard: false,
          });
          assert.ok(files.length >= 1, 'there is always a file');
          let next = 0;
          for (const [i, file] of files.entries()) {
            // Each file decodes on its own: a whole gzip stream.
            const text = (compression === 'gzip' ? gunzipSync(file.bytes) : file.bytes).toString('utf8');
            assert.ok(text.startsWith(CSV_HEADER), `file ${i + 1} starts with the header`);
            const parsed = parseCsv(text.slice(CSV_HEADER.length));
            assert.equal(parsed.length, file.rows, `file ${i + 1}: its rows are counted`);
            assert.equal(
              text.slice(CSV_HEADER.length),
              records.slice(next, next + file.rows).join(''),
              `file ${i + 1} holds the next rows`,
            );
            next += file.rows;
            if (i < files.length - 1) {
              assert.ok(file.rows > 0, 'only the only file may be empty');
              assert.ok(file.bytes.length >= maxFileBytes, `file ${i + 1} reached the limit before it ended`);
            }
          }
          assert.equal(next, rows.length, 'every row is in a file');
        },
      ),
      { numRuns: 150 },
    );
  });
}

test('an export without rows is one file of its format with no rows', async () => {
  const csv = await split([], 1, { format: 'csv', compression: 'none', formulaGuard: false });
  assert.deepEqual(
    csv.map((file) => [file.bytes.toString(), file.rows]),
    [[CSV_HEADER, 0]],
  );
  const gzip = await split([], 1, { format: 'csv', compression: 'gzip', formulaGuard: false });
  assert.deepEqual(
    gzip.map((file) => [gunzipSync(file.bytes).toString(), file.rows]),
    [[CSV_HEADER, 0]],
  );
});

test('a file ends once its bytes reach the limit, not before: a large limit keeps one file', async () => {
  const records = Array.from({ length: 500 }, (_, i) => csvRow([String(i), 'a "quoted" value, with a comma']));
  const one = await split([Buffer.from(records.join(''))], 1024 * 1024, { format: 'csv', compression: 'none', formulaGuard: false });
  assert.equal(one.length, 1);
  assert.equal(one[0]!.rows, 500);
});
