import type { Queryable } from '../db/client';

/**
 * Creating an export is one INSERT: the row is born queued and the database's trigger adds its
 * graphile-worker job in the same transaction (drizzle/0001_export_state_machine.sql), so an
 * export and its job commit together or not at all. The API runs it as a fragment of its own
 * statement (`WITH e AS (<insert>) SELECT ...`), so that it answers with the row as created
 * (queued) in one round trip, before any worker can claim it.
 */

export interface NewExport {
  createdBy: string;
  name: string;
  notes: string;
  queryId: string;
  tags: string[];
  customerScopes: string[];
  partnerScopes: string[];
  maxAttempts: number;
  /** Idempotency-Key header of the creating request, and a hash of its body. */
  idempotencyKey?: string | undefined;
  requestHash?: string | undefined;
}

/** The INSERT, returning every column of the new row. */
export function insertExport(sql: Queryable, input: NewExport) {
  return sql`
    INSERT INTO analytics_exports
      (created_by, name, notes, query_id, tags, customer_scopes, partner_scopes, max_attempts, idempotency_key, request_hash)
    VALUES (${input.createdBy}, ${input.name}, ${input.notes}, ${input.queryId}, ${input.tags}::text[],
            ${input.customerScopes}::uuid[], ${input.partnerScopes}::uuid[], ${input.maxAttempts},
            ${input.idempotencyKey ?? null}, ${input.requestHash ?? null})
    RETURNING *`;
}

export async function createExport(sql: Queryable, input: NewExport): Promise<{ id: string }> {
  const [row] = await sql<{ id: string }[]>`WITH e AS (${insertExport(sql, input)}) SELECT id FROM e`;
  return { id: row!.id };
}
