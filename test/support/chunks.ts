import fc from 'fast-check';

/**
 * What the property tests of the worker's stream readers share: a buffer cut into the chunks a
 * socket might give, and CSV rows quoted as Postgres's COPY quotes them.
 */

/** The buffer cut at the given offsets (in any order, repeats allowed: empty chunks are skipped). */
export function chunked(buffer: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buffer.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const at of [...points, buffer.length]) {
    if (at > from) chunks.push(buffer.subarray(from, at));
    from = Math.max(from, at);
  }
  return chunks;
}

/** A CSV field's text, with the characters that make COPY quote it. */
export const csvFieldText = fc.string({ unit: fc.constantFrom('a', 'é', '😀', ',', '"', '\n', '\r', ' ', '1'), maxLength: 12 });

/** A field as COPY writes it in CSV: quoted when it holds a quote, a comma or a line break, inner quotes doubled. */
function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export const csvRow = (row: string[]) => `${row.map(csvField).join(',')}\n`;
