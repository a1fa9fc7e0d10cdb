-- Who an export's rows are for, who may change an object, and what an export runs.
--
-- 1. The rows of an export are never wider than what each of its readers may read. An export is
--    read by admins and by the audience of its scopes (user_sees_scopes): the users and the
--    partner's users of each customer in customer_scopes, the users of each partner in
--    partner_scopes. So when it runs, its devices are those its creator may read AND that every
--    audience may read: the device belongs to each customer of customer_scopes, and its customer
--    belongs to each partner of partner_scopes. Ownership is read when the COPY runs.
-- 2. Changing, deleting or cancelling an object needs reach over every scope on it
--    (user_reaches_scopes); seeing a shared object is not owning it.
-- 3. An export keeps the definition of its query as it was when the export was created
--    (query_definition), so that a later change of the query changes only later exports.
--
-- Every function here is SECURITY INVOKER (the default): it reads devices, customers, users and
-- analytics_queries with the rights of whoever calls it.

-- The devices every audience of these scopes may read (empty scopes restrict nothing: such an
-- export is read by admins only).
CREATE FUNCTION devices_readable_by_scopes(customer_scopes uuid[], partner_scopes uuid[]) RETURNS SETOF devices
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT d.* FROM devices d JOIN customers c ON c.id = d.customer_id
   WHERE d.customer_id = ALL (customer_scopes)
     AND c.partner_id = ALL (partner_scopes)
$$;
--> statement-breakpoint
-- The devices an export runs on: those its creator may read that every reader may read too.
-- SQL, not PL/pgSQL, so that Postgres inlines it into the export's SELECT.
CREATE FUNCTION export_devices(creator uuid, customer_scopes uuid[], partner_scopes uuid[]) RETURNS SETOF devices
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT d.* FROM devices_visible_to(creator) AS d
   WHERE d.id IN (SELECT r.id FROM devices_readable_by_scopes(customer_scopes, partner_scopes) AS r)
$$;
--> statement-breakpoint
-- Why scopes could only ever give an empty export (no device can be read by all their
-- audiences): one row per problem, by API field; none when the scopes are fine. Ids that name
-- no customer are not reported here (the API says they do not exist).
CREATE FUNCTION export_scope_conflicts(customer_scopes uuid[], partner_scopes uuid[])
RETURNS TABLE (field text, message text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT 'customer_scopes',
         'An export can be scoped to one customer at most: no device belongs to two customers, so the export would always be empty.'
   WHERE (SELECT count(DISTINCT x) FROM unnest(customer_scopes) AS x) > 1
  UNION ALL
  SELECT 'partner_scopes',
         'An export can be scoped to one partner at most: no device belongs to the customers of two partners, so the export would always be empty.'
   WHERE (SELECT count(DISTINCT x) FROM unnest(partner_scopes) AS x) > 1
  UNION ALL
  SELECT 'customer_scopes',
         format('Customer "%s" does not belong to partner "%s" of partner_scopes: no device could be read by both, so the export would always be empty.', c.id, p)
    FROM customers c, unnest(partner_scopes) AS p
   WHERE c.id = ANY (customer_scopes) AND c.partner_id <> p
     AND (SELECT count(DISTINCT x) FROM unnest(partner_scopes) AS x) = 1
$$;
--> statement-breakpoint
-- Reach: every scope on the object is one the viewer could give it. Each customer is one the
-- viewer sees (user_sees_customer); each partner is the viewer's own partner; an admin reaches
-- every scope. PL/pgSQL for the reason given in 0008 (its plan is kept for the session).
CREATE FUNCTION user_reaches_scopes(viewer uuid, customer_scopes uuid[], partner_scopes uuid[]) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  RETURN EXISTS (
    SELECT 1 FROM users u
     WHERE u.id = viewer
       AND (u.account_type = 'admin'
         OR (NOT EXISTS (SELECT 1 FROM unnest(customer_scopes) AS c WHERE NOT user_sees_customer(viewer, c))
             AND (cardinality(partner_scopes) = 0
               OR (u.account_type = 'partner' AND u.partner_id = ALL (partner_scopes))))));
END
$$;
--> statement-breakpoint

-- The definition of a query as an export keeps it: what the export's SELECT is compiled from.
CREATE FUNCTION analytics_query_definition(q analytics_queries) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT jsonb_build_object(
    'metrics', q.metrics, 'devices', q.devices, 'spaces', q.spaces,
    'start', q.start, 'end', q."end", 'interval', q.interval, 'aggregation', q.aggregation,
    'timezone', q.timezone)
$$;
--> statement-breakpoint
ALTER TABLE analytics_exports ADD COLUMN query_definition jsonb;
--> statement-breakpoint
UPDATE analytics_exports e SET query_definition = analytics_query_definition(q)
  FROM analytics_queries q WHERE q.id = e.query_id;
--> statement-breakpoint
ALTER TABLE analytics_exports ALTER COLUMN query_definition SET NOT NULL;
--> statement-breakpoint

-- Taken by the INSERT that creates the export, whoever inserts it: a retry (retry_of) keeps the
-- definition of the export it retries, any other export takes its query's as it is now.
CREATE FUNCTION analytics_exports_snapshot_query() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.query_definition IS NULL AND NEW.retry_of IS NOT NULL THEN
    SELECT e.query_definition INTO NEW.query_definition FROM analytics_exports e WHERE e.id = NEW.retry_of;
  END IF;
  IF NEW.query_definition IS NULL THEN
    SELECT analytics_query_definition(q) INTO NEW.query_definition FROM analytics_queries q WHERE q.id = NEW.query_id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'no analytics query %', NEW.query_id
        USING ERRCODE = '23503', CONSTRAINT = 'analytics_exports_query_id_analytics_queries_id_fk';
    END IF;
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_exports_snapshot_query
  BEFORE INSERT ON analytics_exports
  FOR EACH ROW EXECUTE FUNCTION analytics_exports_snapshot_query();
--> statement-breakpoint
-- Never changed afterwards (SQLSTATE AE009): what an export ran must stay what it was created with.
CREATE FUNCTION analytics_exports_refuse_definition_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the query definition of an analytics export cannot be changed'
    USING ERRCODE = 'AE009', DETAIL = format('export %s', OLD.id),
          HINT = 'change the analytics query and create a new export';
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_exports_definition_immutable
  BEFORE UPDATE OF query_definition ON analytics_exports
  FOR EACH ROW WHEN (OLD.query_definition IS DISTINCT FROM NEW.query_definition)
  EXECUTE FUNCTION analytics_exports_refuse_definition_change();
--> statement-breakpoint

-- retry_export (0006), unchanged but for one thing: the retry runs the failed export's own
-- query definition, not the query as it is now.
CREATE OR REPLACE FUNCTION retry_export(export_id uuid) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  original analytics_exports%ROWTYPE;
  earlier uuid;
  new_id uuid;
BEGIN
  -- The lock makes two concurrent retries of one export serialise: the second sees the first's retry.
  SELECT * INTO original FROM analytics_exports WHERE id = export_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no analytics export %', export_id USING ERRCODE = 'P0002';
  END IF;
  IF original.status <> 'failed' THEN
    RAISE EXCEPTION 'only a failed analytics export can be retried; % is %', export_id, original.status
      USING ERRCODE = 'AE002',
            HINT = CASE WHEN original.status = 'complete' THEN 'it succeeded: nothing to retry'
                        ELSE 'it has not finished: cancel_export() it first, or wait' END;
  END IF;
  SELECT id INTO earlier FROM analytics_exports WHERE retry_of = export_id ORDER BY created LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'analytics export % was already retried as %', export_id, earlier
      USING ERRCODE = 'AE003', HINT = format('retry %s if it failed too', earlier);
  END IF;

  INSERT INTO analytics_exports
    (created_by, name, notes, query_id, query_definition, tags, customer_scopes, partner_scopes, max_attempts, retry_of)
  VALUES
    (original.created_by, original.name, original.notes, original.query_id, original.query_definition, original.tags,
     original.customer_scopes, original.partner_scopes, original.max_attempts, original.id)
  RETURNING id INTO new_id;
  RETURN new_id;
END
$$;
