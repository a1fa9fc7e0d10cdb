import type { Queryable } from '../db/client';
import type { AccountType } from '../db/schema';
import { exportScopeConflicts, scopeProblems, userReachesScopes } from '../db/statements/scopes';

/**
 * General scope (docs/api.md, "Scopes"): who may see an object, which scopes a user may give
 * one, and who may change it. Visibility itself is the database's `user_sees_scopes` /
 * `user_sees_customer` (drizzle/0003_visibility.sql), reach `user_reaches_scopes` and the
 * scopes an export may have `export_scope_conflicts` (drizzle/0009_export_audience.sql), so the
 * API and the export worker agree; this module decides what an object's scopes are when it is
 * created or changed.
 */

export interface Caller {
  id: string;
  accountType: AccountType;
  partnerId: string | null;
  customerId: string | null;
}

export interface Scopes {
  customerScopes: string[];
  partnerScopes: string[];
}

/**
 * Omitted scopes default to the creator's own: a customer user's objects are scoped to their
 * customer, a partner user's to their partner. An admin's defaults are empty: such an object is
 * visible to admins only until an admin gives it scopes.
 */
export function defaultScopes(caller: Caller): Scopes {
  return {
    customerScopes: caller.accountType === 'customer' && caller.customerId ? [caller.customerId] : [],
    partnerScopes: caller.accountType === 'partner' && caller.partnerId ? [caller.partnerId] : [],
  };
}

/** Scope lists without duplicates, ids in the lower case Postgres returns them in. */
export function distinctIds(ids: string[]): string[] {
  return [...new Set(ids.map((id) => id.toLowerCase()))];
}

export type ScopeErrors = Partial<Record<'customer_scopes' | 'partner_scopes', string[]>>;

/**
 * Checks that the caller may give an object these scopes: each must be within the caller's
 * reach (user_reaches_scopes: every customer one the caller sees, every partner their own, any
 * for an admin) and exist, and the caller must still see the object afterwards. On an update
 * these are the scopes after the change, all of them. Returns the problems by field; empty when fine.
 */
export async function checkScopes(sql: Queryable, caller: Caller, scopes: Scopes): Promise<ScopeErrors> {
  const row = await scopeProblems(sql, caller.id, scopes);
  const errors: ScopeErrors = {};
  if (row.bad_customers.length > 0) {
    errors.customer_scopes = row.bad_customers.map((id) => `Invalid pk "${id}" - object does not exist.`);
  }
  if (row.bad_partners.length > 0) {
    errors.partner_scopes = row.bad_partners.map((id) => `Invalid pk "${id}" - object does not exist.`);
  }
  if (Object.keys(errors).length === 0 && !row.visible) {
    const field = caller.accountType === 'partner' ? 'partner_scopes' : 'customer_scopes';
    errors[field] = ['The scopes must include your own customer or partner, or you could not see the object.'];
  }
  return errors;
}

/**
 * Scopes an export cannot have because its rows would always be empty: its rows are restricted
 * to what every reader of its scopes may read, and no device is readable by the audiences of two
 * customers, of two partners, or of a customer and a partner it does not belong to
 * (export_scope_conflicts). Returns the problems by field; empty when fine.
 */
export async function checkExportScopes(sql: Queryable, scopes: Scopes): Promise<ScopeErrors> {
  const rows = await exportScopeConflicts(sql, scopes);
  const errors: ScopeErrors = {};
  for (const { field, message } of rows) {
    errors[field] ??= [];
    errors[field].push(message);
  }
  return errors;
}

/**
 * Whether the caller may change, delete or cancel an object with these scopes: every scope on it
 * must be within their reach (user_reaches_scopes), not only one they see it through.
 */
export async function callerReaches(sql: Queryable, caller: Caller, scopes: Scopes): Promise<boolean> {
  return userReachesScopes(sql, caller.id, scopes);
}
