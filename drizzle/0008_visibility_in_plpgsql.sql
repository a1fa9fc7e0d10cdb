-- The visibility rules of 0003, unchanged, in PL/pgSQL. As SQL functions they cannot be inlined
-- (their bodies are EXISTS subqueries), so Postgres planned their bodies again in every statement
-- that called them: about 0.15-0.3 ms on each single-row read the API makes (a third of
-- GET /analytics/exports/{id}/'s database time, npm run bench). PL/pgSQL keeps each body's plan
-- for the whole session. devices_visible_to stays SQL: it is inlined into the export's SELECT.
CREATE OR REPLACE FUNCTION user_sees_customer(viewer uuid, customer uuid) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  RETURN EXISTS (
    SELECT 1 FROM users u
     WHERE u.id = viewer
       AND (u.account_type = 'admin'
         OR (u.account_type = 'customer' AND u.customer_id = customer)
         OR (u.account_type = 'partner'
             AND EXISTS (SELECT 1 FROM customers c WHERE c.id = customer AND c.partner_id = u.partner_id))));
END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION user_sees_scopes(viewer uuid, customer_scopes uuid[], partner_scopes uuid[]) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  RETURN EXISTS (
    SELECT 1 FROM users u
     WHERE u.id = viewer
       AND (u.account_type = 'admin'
         OR (u.account_type = 'customer' AND u.customer_id = ANY (customer_scopes))
         OR (u.account_type = 'partner'
             AND (u.partner_id = ANY (partner_scopes)
               OR EXISTS (SELECT 1 FROM customers c
                           WHERE c.id = ANY (customer_scopes) AND c.partner_id = u.partner_id)))));
END
$$;
