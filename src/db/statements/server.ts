import type pg from 'pg';
import type { Queryable } from '../client';

/** Statements about the server and this session rather than a table. */

/** The database answers at all (GET /readyz). */
export async function pingDatabase(sql: Queryable): Promise<void> {
  await sql`SELECT 1`;
}

/**
 * The server's version, and whether sessions of this user can run as `role` to read `tables`:
 * the role exists, this user may SET ROLE to it (Postgres 16 tells SET apart from membership),
 * and in this database it may read every one of them (a role made by another database's
 * migration has no grants here until this one's migration ran).
 */
export async function readerRoleUsable(pool: pg.Pool, role: string, tables: string[]): Promise<{ version: number; usable: boolean }> {
  const { rows } = await pool.query<{ version: number; usable: boolean }>(
    `SELECT current_setting('server_version_num')::int AS version,
            CASE WHEN to_regrole($1) IS NULL THEN false
                 ELSE pg_has_role($1::name, CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END)
                      AND (SELECT bool_and(CASE WHEN to_regclass(t) IS NULL THEN false ELSE has_table_privilege($1::name, t::regclass, 'SELECT') END)
                             FROM unnest($2::text[]) AS t)
            END AS usable`,
    [role, tables],
  );
  return rows[0]!;
}
