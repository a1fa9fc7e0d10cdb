-- Fair turns (0015) at the cost of a plain claim while no other tenant waits, and without reading
-- a tenant's whole backlog.
--
-- 1. Whether another tenant has a due export was asked of every due queued export (each joined to
--    its creator): with one tenant's hundreds of exports waiting, every claim read all of them.
--    It is now asked of the users who have queued exports, each found with its earliest run_at
--    by one probe of the index below (a loose scan): the cost follows how many users have exports
--    waiting, not how many exports.
-- 2. Every claim took its tenant's advisory lock exclusively and held it to its commit, so one
--    tenant's claims ran one after another, each waiting for the previous one's commit, even with
--    nobody else waiting. When no other tenant has a due export the count does not matter (the
--    answer is yes whatever it is): such a claim takes the lock shared, and claims of one tenant
--    no longer wait for each other. A claim that finds another tenant's export due takes it
--    exclusively, which waits for the shared holders to commit, and counts them.
-- The answers are 0015's, but for one instant: a claim that found nothing else due, and sees
-- another tenant's export due once it holds the shared lock, cannot count the claims that hold it
-- beside it, so it is refused (its job comes back later, as any refused claim's).
CREATE INDEX "analytics_exports_queued_created_by_idx" ON "analytics_exports" USING btree ("created_by", "run_at") WHERE "analytics_exports"."status" = 'queued';
--> statement-breakpoint

-- Whether a tenant other than export_tenant has a due export while it runs fewer than max_running
-- exports itself. PL/pgSQL, so that a session plans the query once, not at every call.
CREATE FUNCTION analytics_export_others_due(export_tenant text, max_running integer) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN EXISTS (
    WITH RECURSIVE running AS MATERIALIZED (
      SELECT analytics_export_tenant(u.account_type, u.partner_id, u.customer_id) AS tenant, count(*) AS exports
        FROM analytics_exports e JOIN users u ON u.id = e.created_by
       WHERE e.status = 'running'
       GROUP BY 1
    ),
    -- Every user with a queued export and the earliest run_at of theirs, in created_by order.
    creators AS (
      (SELECT e.created_by, e.run_at FROM analytics_exports e WHERE e.status = 'queued' ORDER BY e.created_by, e.run_at LIMIT 1)
      UNION ALL
      SELECT following.created_by, following.run_at
        FROM creators c
        CROSS JOIN LATERAL (SELECT e.created_by, e.run_at FROM analytics_exports e
                             WHERE e.status = 'queued' AND e.created_by > c.created_by
                             ORDER BY e.created_by, e.run_at LIMIT 1) AS following
    )
    SELECT 1
      FROM creators c JOIN users u ON u.id = c.created_by
     WHERE c.run_at <= now()
       AND analytics_export_tenant(u.account_type, u.partner_id, u.customer_id) <> export_tenant
       AND coalesce((SELECT o.exports FROM running o
                      WHERE o.tenant = analytics_export_tenant(u.account_type, u.partner_id, u.customer_id)), 0) < max_running);
END
$$;
--> statement-breakpoint

-- As 0015's: true when max_running is 0, when its tenant runs fewer than max_running exports, or
-- when no other tenant under its own limit has a due export; otherwise false, and its job is
-- moved later. Each statement of this VOLATILE function reads a fresh snapshot, so what it reads
-- after taking the lock includes every claim that held the lock before.
CREATE OR REPLACE FUNCTION analytics_export_take_turn(export_id uuid, max_running integer, retry_after interval) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  export_tenant text;
  queued_at timestamptz;
  tenant_lock bigint;
  others_due boolean;
  running_now bigint;
  queued_ahead bigint;
BEGIN
  IF max_running <= 0 THEN
    RETURN true;
  END IF;
  SELECT analytics_export_tenant(u.account_type, u.partner_id, u.customer_id), e.run_at INTO export_tenant, queued_at
    FROM analytics_exports e JOIN users u ON u.id = e.created_by
   WHERE e.id = export_id;
  IF export_tenant IS NULL THEN
    RETURN true; -- deleted meanwhile: the claim's own guard finds nothing to claim
  END IF;
  tenant_lock := hashtextextended('analytics_export_tenant:' || export_tenant, 0);

  SELECT analytics_export_others_due(export_tenant, max_running) INTO others_due;
  IF NOT others_due THEN
    PERFORM pg_advisory_xact_lock_shared(tenant_lock);
    SELECT analytics_export_others_due(export_tenant, max_running) INTO others_due;
    IF NOT others_due THEN
      RETURN true;
    END IF;
    -- Another tenant's export became due meanwhile: refused (the header says why).
  ELSE
    PERFORM pg_advisory_xact_lock(tenant_lock);
    SELECT count(*) INTO running_now
      FROM analytics_exports e JOIN users u ON u.id = e.created_by
     WHERE e.status = 'running' AND analytics_export_tenant(u.account_type, u.partner_id, u.customer_id) = export_tenant;
    IF running_now < max_running THEN
      RETURN true;
    END IF;
    SELECT analytics_export_others_due(export_tenant, max_running) INTO others_due;
    IF NOT others_due THEN
      RETURN true;
    END IF;
  END IF;

  SELECT count(*) INTO queued_ahead
    FROM analytics_exports e JOIN users u ON u.id = e.created_by
   WHERE e.status = 'queued' AND e.run_at <= now()
     AND analytics_export_tenant(u.account_type, u.partner_id, u.customer_id) = export_tenant
     AND (e.run_at, e.id) < (queued_at, export_id);
  PERFORM enqueue_analytics_export(export_id, now() + least(retry_after * (1 + queued_ahead::float8 / max_running), interval '5 minutes'));
  RETURN false;
END
$$;
