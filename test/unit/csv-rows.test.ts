import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { CsvRowReader } from '../../src/worker/encoders/csv-rows';
import type { CsvRows } from '../../src/worker/encoders/rows';
import { chunked, csvFieldText as field, csvRow } from '../support/chunks';

/**
 * CsvRowReader cuts the CSV that Postgres's COPY writes into batches of whole rows, however the
 * bytes are cut into chunks: a field holding a quote, a comma or a newline is quoted, inner quotes
 * doubled.
 */

async function run(chunks: Buffer[]): Promise<CsvRows[]> {
  const reader = new CsvRowReader();
  const batches: CsvRows[] = [];
  reader.on('data', (batch: CsvRows) => batches.push(batch));
  await new Promise<void>((resolve, reject) => {
    Readable.from(chunks, { objectMode: false }).pipe(reader).on('end', resolve).on('error', reject);
  });
  return batches;
}

test('batches hold whole rows, counted exactly across any chunking, quoted newlines and quotes included', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(field, { minLength: 1, maxLength: 4 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      async (rows, cuts) => {
        const buffer = Buffer.from(rows.map(csvRow).join(''));
        const batches = await run(chunked(buffer, cuts));
        assert.equal(
          batches.reduce((sum, batch) => sum + batch.rows, 0),
          rows.length,
        );
        assert.ok(Buffer.concat(batches.map((batch) => batch.text)).equals(buffer), 'the CSV passes through unchanged');
        // Every batch ends where a row ends: its rows, and nothing more, rebuild from the start.
        let at = 0;
        for (const batch of batches) {
          const expected = rows
            .slice(at, at + batch.rows)
            .map(csvRow)
            .join('');
          assert.equal(batch.text.toString('utf8'), expected);
          at += batch.rows;
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('a newline inside quotes ends no row; nothing at all is no row; a row cut short is an error', async () => {
  const count = async (chunks: Buffer[]) => (await run(chunks)).reduce((sum, batch) => sum + batch.rows, 0);
  assert.equal(await count([Buffer.from('"x\ny",1\n')]), 1);
  assert.equal(await count([Buffer.from('"say ""hi""\n",1\n2,3\n')]), 2);
  assert.equal(await count([]), 0);
  // Cut right after the opening quote and right before the closing one.
  assert.equal(await count([Buffer.from('"'), Buffer.from('\n'), Buffer.from('"\n')]), 1);
  await assert.rejects(run([Buffer.from('a,b\nc,d')]), /in the middle of a CSV row/);
});
