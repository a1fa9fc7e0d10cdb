import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { CsvProgress } from '../../src/worker/csv-progress';

/**
 * CsvProgress counts the records of a CSV as Postgres's COPY writes it, however the bytes are cut
 * into chunks: a field holding a quote, a comma or a newline is quoted, inner quotes doubled.
 */

const field = fc.string({ unit: fc.constantFrom('a', 'é', '😀', ',', '"', '\n', '\r', ' ', '1'), maxLength: 12 });

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function csv(header: string[], rows: string[][]): Buffer {
  return Buffer.from([header, ...rows].map((row) => `${row.map(csvField).join(',')}\n`).join(''));
}

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

async function run(chunks: Buffer[]): Promise<{ progress: CsvProgress; output: Buffer }> {
  const progress = new CsvProgress();
  const out: Buffer[] = [];
  progress.on('data', (chunk: Buffer) => out.push(chunk));
  await new Promise<void>((resolve, reject) => {
    Readable.from(chunks, { objectMode: false }).pipe(progress).on('end', resolve).on('error', reject);
  });
  return { progress, output: Buffer.concat(out) };
}

test('rows and bytes are counted exactly across any chunking, quoted newlines and quotes included', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(field, { minLength: 1, maxLength: 4 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      async (rows, cuts) => {
        const buffer = csv(['timestamp', 'value'], rows);
        const { progress, output } = await run(chunked(buffer, cuts));
        assert.equal(progress.rows, rows.length);
        assert.equal(progress.bytes, buffer.length);
        assert.ok(output.equals(buffer), 'the CSV passes through unchanged');
      },
    ),
    { numRuns: 300 },
  );
});

test('a newline inside quotes is no record; a header alone is none; nothing at all is none', async () => {
  assert.equal((await run([Buffer.from('a,b\n"x\ny",1\n')])).progress.rows, 1);
  assert.equal((await run([Buffer.from('a,b\n"say ""hi""\n",1\n2,3\n')])).progress.rows, 2);
  assert.equal((await run([Buffer.from('a,b\n')])).progress.rows, 0);
  assert.equal((await run([])).progress.rows, 0);
  // Cut right after the opening quote and right before the closing one.
  assert.equal((await run([Buffer.from('a\n"'), Buffer.from('\n'), Buffer.from('"\n')])).progress.rows, 1);
});
