import type { Queryable } from '../client';

/**
 * The database's scope rules asked about a caller and a set of scopes: user_sees_scopes,
 * user_reaches_scopes (drizzle/0003_visibility.sql, 0008) and export_scope_conflicts
 * (drizzle/0009_export_audience.sql). src/auth/scopes.ts turns the answers into field errors.
 */

export interface ScopeIds {
  customerScopes: string[];
  partnerScopes: string[];
}

/**
 * Scopes the user may not give an object (missing, or beyond their reach), and whether the user
 * would still see an object with these scopes.
 */
export async function scopeProblems(
  sql: Queryable,
  userId: string,
  scopes: ScopeIds,
): Promise<{ bad_customers: string[]; bad_partners: string[]; visible: boolean }> {
  const [row] = await sql<{ bad_customers: string[]; bad_partners: string[]; visible: boolean }[]>`
    SELECT
      ARRAY(SELECT x::text FROM unnest(${scopes.customerScopes}::uuid[]) AS x
             WHERE NOT (EXISTS (SELECT 1 FROM customers c WHERE c.id = x)
                        AND user_reaches_scopes(${userId}, ARRAY[x], '{}'))) AS bad_customers,
      ARRAY(SELECT x::text FROM unnest(${scopes.partnerScopes}::uuid[]) AS x
             WHERE NOT (EXISTS (SELECT 1 FROM partners p WHERE p.id = x)
                        AND user_reaches_scopes(${userId}, '{}', ARRAY[x]))) AS bad_partners,
      user_sees_scopes(${userId}, ${scopes.customerScopes}::uuid[], ${scopes.partnerScopes}::uuid[]) AS visible`;
  return row!;
}

/** Why an export could not have these scopes (its rows would always be empty), by field. */
export async function exportScopeConflicts(
  sql: Queryable,
  scopes: ScopeIds,
): Promise<{ field: 'customer_scopes' | 'partner_scopes'; message: string }[]> {
  return sql<{ field: 'customer_scopes' | 'partner_scopes'; message: string }[]>`
    SELECT field, message FROM export_scope_conflicts(${scopes.customerScopes}::uuid[], ${scopes.partnerScopes}::uuid[])`;
}

/** user_reaches_scopes: every scope is within the user's reach. */
export async function userReachesScopes(sql: Queryable, userId: string, scopes: ScopeIds): Promise<boolean> {
  const [row] = await sql<{ reaches: boolean }[]>`
    SELECT user_reaches_scopes(${userId}, ${scopes.customerScopes}::uuid[], ${scopes.partnerScopes}::uuid[]) AS reaches`;
  return row!.reaches;
}
