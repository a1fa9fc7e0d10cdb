import type { Queryable } from '../db/client';

/**
 * General scope (DESIGN.md, "Scopes"): who may see an object, and which scopes a user may give
 * one. Visibility itself is the database's `user_sees_scopes` / `user_sees_customer`
 * (drizzle/0003_visibility.sql), so the API and the export worker agree; this module decides
 * what an object's scopes are when it is created or changed.
 */

export interface Caller {
  id: string;
  accountType: 'admin' | 'partner' | 'customer';
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
 * Checks that the caller may give an object these scopes: every customer must be one the
 * caller sees, every partner their own (any partner for an admin), and the caller must still
 * see the object afterwards. On an update, scopes the object already had are not the caller's
 * doing and are kept without question. Returns the problems by field; empty when fine.
 */
export async function checkScopes(sql: Queryable, caller: Caller, scopes: Scopes, previous?: Scopes): Promise<ScopeErrors> {
  const added = {
    customers: scopes.customerScopes.filter((id) => !previous?.customerScopes.includes(id)),
    partners: scopes.partnerScopes.filter((id) => !previous?.partnerScopes.includes(id)),
  };
  const [row] = await sql<{ bad_customers: string[]; bad_partners: string[]; visible: boolean }[]>`
    SELECT
      ARRAY(SELECT x::text FROM unnest(${added.customers}::uuid[]) AS x
             WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = x AND user_sees_customer(${caller.id}, c.id))) AS bad_customers,
      ARRAY(SELECT x::text FROM unnest(${added.partners}::uuid[]) AS x
             WHERE NOT EXISTS (SELECT 1 FROM partners p JOIN users u ON u.id = ${caller.id}
                                WHERE p.id = x AND (u.account_type = 'admin' OR u.partner_id = p.id))) AS bad_partners,
      user_sees_scopes(${caller.id}, ${scopes.customerScopes}::uuid[], ${scopes.partnerScopes}::uuid[]) AS visible`;
  const errors: ScopeErrors = {};
  if (row!.bad_customers.length > 0) {
    errors.customer_scopes = row!.bad_customers.map((id) => `Invalid pk "${id}" - object does not exist.`);
  }
  if (row!.bad_partners.length > 0) {
    errors.partner_scopes = row!.bad_partners.map((id) => `Invalid pk "${id}" - object does not exist.`);
  }
  if (Object.keys(errors).length === 0 && !row!.visible) {
    const field = caller.accountType === 'partner' ? 'partner_scopes' : 'customer_scopes';
    errors[field] = ['The scopes must include your own customer or partner, or you could not see the object.'];
  }
  return errors;
}
