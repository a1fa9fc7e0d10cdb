-- Fair turns between tenants: an export starts only if its tenant runs fewer than a given number
-- of exports at once, unless no other tenant has work waiting. The worker's claim calls
-- analytics_export_take_turn before it moves the export to running; a refused export is put back
-- on the queue a little later, neither failed nor charged an attempt.

-- Whose share an export counts against: a customer user's customer; a partner user's partner
-- (all its users together, whatever customers they scope to, so that scoping cannot dodge the
-- limit); every admin together. The creator's account decides, not the scopes.
CREATE FUNCTION analytics_export_tenant(account_type account_type, partner_id uuid, customer_id uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- Casts, not uuid || text (only STABLE): an IMMUTABLE body is inlined into the queries
  -- below rather than called once per row.
  SELECT CASE account_type
           WHEN 'customer' THEN 'customer:' || customer_id::text
           WHEN 'partner' THEN 'partner:' || partner_id::text
           ELSE 'admin'
         END
$$;
--> statement-breakpoint

-- The queue's due exports are found without reading every export ever made.
CREATE INDEX "analytics_exports_queued_run_at_idx" ON "analytics_exports" USING btree ("run_at") WHERE "analytics_exports"."status" = 'queued';
--> statement-breakpoint

-- Whether the export may start now: true when max_running is 0 (no limit), when its tenant runs
-- fewer than max_running exports, or when no other tenant under its own limit has a due export
-- (a limit must not leave workers idle). Otherwise the answer is false and its job is moved
-- later: retry_after for the tenant's oldest waiting export, one more retry_after for every
-- max_running exports of the tenant queued before it, at most 5 minutes. So a backlog of n
-- exports is looked at about max_running x ln(n / max_running) times per retry_after rather than
-- n times, while the exports at its head, which take a slot that frees up, come back soonest. The tenant's advisory lock, held to the end of the caller's transaction (the
-- claim is one statement), orders two workers claiming for one tenant at the same instant: the
-- second counts after the first's claim has committed. Each statement of this VOLATILE function
-- reads a fresh snapshot, so that count is current.
CREATE FUNCTION analytics_export_take_turn(export_id uuid, max_running integer, retry_after interval) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  export_tenant text;
  queued_at timestamptz;
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
  PERFORM pg_advisory_xact_lock(hashtextextended('analytics_export_tenant:' || export_tenant, 0));

  IF NOT EXISTS (
    WITH running AS MATERIALIZED (
      SELECT analytics_export_tenant(u.account_type, u.partner_id, u.customer_id) AS tenant, count(*) AS exports
        FROM analytics_exports e JOIN users u ON u.id = e.created_by
       WHERE e.status = 'running'
       GROUP BY 1
    )
    SELECT 1
      FROM running r
     WHERE r.tenant = export_tenant AND r.exports >= max_running
       AND EXISTS (
             SELECT 1
               FROM analytics_exports e JOIN users u ON u.id = e.created_by
              WHERE e.status = 'queued' AND e.run_at <= now()
                AND analytics_export_tenant(u.account_type, u.partner_id, u.customer_id) <> export_tenant
                AND coalesce((SELECT o.exports FROM running o
                               WHERE o.tenant = analytics_export_tenant(u.account_type, u.partner_id, u.customer_id)), 0) < max_running)
  ) THEN
    RETURN true;
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
