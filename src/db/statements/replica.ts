import type pg from 'pg';

/**
 * Statements that compare the export database (EXPORT_DATABASE_URL, typically a streaming
 * standby) with the primary: where the primary's WAL is, and how far the standby has replayed it.
 */

/** The primary's current WAL position: a standby that has replayed it sees every commit made so far. */
export async function primaryWalPosition(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`);
  return rows[0]!.lsn;
}

export interface ReplayProgress {
  /** The server is a standby (in recovery); false for a primary, which is always caught up. */
  standby: boolean;
  /** It has replayed the WAL up to `target`. */
  caughtUp: boolean;
  /** WAL bytes between what it replayed and `target`; 0 when caught up or not a standby. */
  bytesBehind: number;
  /** Since when it replayed its last transaction (null: none since it started). */
  lastReplayedAt: Date | null;
}

/** How far the server behind `pool` has replayed the WAL, measured against `target` (an LSN). */
export async function replayProgress(pool: pg.Pool, target: string): Promise<ReplayProgress> {
  const { rows } = await pool.query<{ standby: boolean; caught_up: boolean; bytes_behind: number; last_replayed_at: Date | null }>(
    `SELECT pg_is_in_recovery() AS standby,
            coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, true) AS caught_up,
            greatest(coalesce(pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()), 0), 0)::float8 AS bytes_behind,
            pg_last_xact_replay_timestamp() AS last_replayed_at`,
    [target],
  );
  const row = rows[0]!;
  return { standby: row.standby, caughtUp: row.caught_up, bytesBehind: row.bytes_behind, lastReplayedAt: row.last_replayed_at };
}
