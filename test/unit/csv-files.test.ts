import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { CopyProgress, CsvFileSplitter } from '../../src/worker/csv-files';
import { CSV_FILE_FORMAT } from '../../src/worker/file-format';
import { parseCsv } from '../support/csv';

/**
 * CsvFileSplitter cuts the CSV of a COPY (as Postgres writes it: a field holding a quote, a comma
 * or a newline is quoted, inner quotes doubled) into files at record ends, however the bytes are
 * cut into chunks, and counts the records of each file exactly.
 */

const field = fc.string({ unit: fc.constantFrom('a', 'é', '😀', ',', '"', '\n', '\r', ' ', '1'), maxLength: 12 });

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

const record = (row: string[]) => `${row.map(csvField).join(',')}\n`;
const HEADER = record(['timestamp', 'value']);

/** The buffer cut at the given offsets (in any order, repeats allowed: empty chunks are skipped). */
function chunked(buffer: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buffer.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const at of [...points, buffer.length]) {
    if (at > from) chunks.push(buffer.subarray(from, at));
    from = Math.max(from, at);
  }
  return chunks;
}

/** Splits the chunks into in-memory files through the CSV encoder; the files' bytes and the splitter. */
async function split(chunks: Buffer[], maxFileBytes: number) {
  const files: Buffer[][] = [];
  const progress = new CopyProgress();
  const splitter = new CsvFileSplitter({
    maxFileBytes,
    progress,
    openFile(header, fileNumber) {
      assert.equal(fileNumber, files.length + 1);
      const parts: Buffer[] = [];
      files.push(parts);
      const encoder = CSV_FILE_FORMAT.newFileEncoder(header);
      const out = new PassThrough();
      out.on('data', (chunk: Buffer) => parts.push(chunk));
      encoder.pipe(out);
      return {
        input: encoder,
        get bytes() {
          return parts.reduce((sum, part) => sum + part.length, 0);
        },
      };
    },
  });
  await new Promise<void>((resolve, reject) => {
    Readable.from(chunks, { objectMode: false }).pipe(splitter).on('finish', resolve).on('error', reject);
  });
  await new Promise((resolve) => setImmediate(resolve));
  return { files: files.map((parts) => Buffer.concat(parts)), splitter, progress };
}

test('files hold whole records in order, each with the header, cut once past the limit; rows counted exactly', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(field, { minLength: 1, maxLength: 4 }), { maxLength: 30 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      fc.integer({ min: 1, max: 120 }),
      async (rows, cuts, maxFileBytes) => {
        const records = rows.map(record);
        const csv = Buffer.from(HEADER + records.join(''));
        const { files, splitter, progress } = await split(chunked(csv, cuts), maxFileBytes);
        assert.equal(progress.rows, rows.length);
        assert.equal(progress.bytes, csv.length);
        assert.ok(files.length >= 1);
        assert.equal(splitter.fileRows.length, files.length);
        let next = 0;
        for (const [i, file] of files.entries()) {
          const text = file.toString('utf8');
          assert.ok(text.startsWith(HEADER), `file ${i + 1} starts with the header`);
          const parsed = parseCsv(text).slice(1);
          assert.equal(parsed.length, splitter.fileRows[i], `file ${i + 1}: its rows are counted`);
          assert.equal(
            text.slice(HEADER.length),
            records.slice(next, next + parsed.length).join(''),
            `file ${i + 1} holds the next records`,
          );
          next += parsed.length;
          if (i < files.length - 1) {
            assert.ok(parsed.length > 0, 'only the only file may be empty');
            const lastRecord = Buffer.byteLength(records[next - 1]!);
            assert.ok(file.length >= maxFileBytes, `file ${i + 1} reached the limit before it ended`);
            // A file holds at least one record, even when its header alone passes the limit.
            assert.ok(
              parsed.length === 1 || file.length - lastRecord < maxFileBytes,
              `file ${i + 1} ended at the first record end past the limit`,
            );
          }
        }
        assert.equal(next, rows.length, 'every record is in a file');
      },
    ),
    { numRuns: 300 },
  );
});

test('a newline inside quotes ends no record; a header alone is one empty file', async () => {
  const one = await split([Buffer.from('a,b\n"x\ny",1\n')], 1);
  assert.deepEqual(one.splitter.fileRows, [1]);
  const two = await split([Buffer.from('a,b\n"say ""hi""\n",1\n2,3\n')], 1);
  assert.deepEqual(two.splitter.fileRows, [1, 1]);
  assert.deepEqual(
    two.files.map((file) => file.toString()),
    ['a,b\n"say ""hi""\n",1\n', 'a,b\n2,3\n'],
  );
  const empty = await split([Buffer.from('a,b\n')], 1);
  assert.deepEqual(empty.splitter.fileRows, [0]);
  assert.deepEqual(
    empty.files.map((file) => file.toString()),
    ['a,b\n'],
  );
  // Cut right after the opening quote and right before the closing one.
  assert.deepEqual((await split([Buffer.from('a\n"'), Buffer.from('\n'), Buffer.from('"\n')], 100)).splitter.fileRows, [1]);
});
