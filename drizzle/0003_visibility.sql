-- Who may see what (general scope, docs/api.md), in one place for the API and the export worker alike.
--   admin:    everything;
--   partner:  objects whose partner_scopes hold their partner, or whose customer_scopes hold one
--             of their partner's customers; devices of their partner's customers;
--   customer: objects whose customer_scopes hold their customer; devices of their customer.

CREATE FUNCTION user_sees_customer(viewer uuid, customer uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT EXISTS (
    SELECT 1 FROM users u
     WHERE u.id = viewer
       AND (u.account_type = 'admin'
         OR (u.account_type = 'customer' AND u.customer_id = customer)
         OR (u.account_type = 'partner'
             AND EXISTS (SELECT 1 FROM customers c WHERE c.id = customer AND c.partner_id = u.partner_id))))
$$;
--> statement-breakpoint
CREATE FUNCTION user_sees_scopes(viewer uuid, customer_scopes uuid[], partner_scopes uuid[]) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT EXISTS (
    SELECT 1 FROM users u
     WHERE u.id = viewer
       AND (u.account_type = 'admin'
         OR (u.account_type = 'customer' AND u.customer_id = ANY (customer_scopes))
         OR (u.account_type = 'partner'
             AND (u.partner_id = ANY (partner_scopes)
               OR EXISTS (SELECT 1 FROM customers c
                           WHERE c.id = ANY (customer_scopes) AND c.partner_id = u.partner_id)))))
$$;
--> statement-breakpoint
-- The devices a user may read: the rows of every export are restricted to these when it runs.
CREATE FUNCTION devices_visible_to(viewer uuid) RETURNS SETOF devices
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT d.* FROM devices d WHERE user_sees_customer(viewer, d.customer_id)
$$;
