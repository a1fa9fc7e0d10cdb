import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Queryable } from '../../src/db/client';
import type { TestDatabase } from './database';
import { waitFor } from './wait';

/** Reading an export as the database has it, and waiting for it to get somewhere. */

export interface ExportRow {
  id: string;
  status: 'queued' | 'running' | 'complete' | 'failed';
  errors: { code: string; message: string; [key: string]: unknown } | null;
  last_error: { code: string; message: string; [key: string]: unknown } | null;
  number_of_rows: number | null;
  total_bytes: number | null;
  rows_written: number | null;
  bytes_written: number | null;
  object_key: string | null;
  attempts: number;
  worker_id: string | null;
  heartbeat_at: string | null;
  cancel_requested_at: string | null;
}

/**
 * The backends of this database still running an export's COPY. An idle connection of a worker's
 * COPY pool shows its last COPY in pg_stat_activity too: it is not counted.
 */
export async function copyBackends(database: TestDatabase): Promise<number> {
  const [row] = await database.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = ${database.name} AND query LIKE 'COPY (%' AND state <> 'idle' AND pid <> pg_backend_pid()`;
  return row!.n;
}

export async function readExport(sql: Queryable, id: string): Promise<ExportRow | undefined> {
  const [row] = await sql<ExportRow[]>`
    SELECT id, status, errors, last_error, number_of_rows::float8 AS number_of_rows, total_bytes::float8 AS total_bytes,
           rows_written::float8 AS rows_written, bytes_written::float8 AS bytes_written, object_key, attempts, worker_id,
           heartbeat_at, cancel_requested_at
      FROM analytics_exports WHERE id = ${id}`;
  return row;
}

/** Waits until the export is complete or failed and returns it. */
export function waitForFinalExport(sql: Queryable, id: string, timeoutMs = 60_000): Promise<ExportRow> {
  return waitForExport(sql, id, (row) => row.status === 'complete' || row.status === 'failed', timeoutMs);
}

export function waitForExport(sql: Queryable, id: string, predicate: (row: ExportRow) => boolean, timeoutMs = 60_000): Promise<ExportRow> {
  return waitFor(
    async () => {
      const row = await readExport(sql, id);
      return row && predicate(row) ? row : undefined;
    },
    timeoutMs,
    `export ${id}`,
  );
}

/** The same SELECT run through a plain COPY on a connection of its own: what the export must equal. */
export async function directCopy(databaseUrl: string, select: string): Promise<Buffer> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const chunks: Buffer[] = [];
    const stream = client.query(copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv, HEADER)`));
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } finally {
    await client.end();
  }
}
