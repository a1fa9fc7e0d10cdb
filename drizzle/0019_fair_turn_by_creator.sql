-- A fair turn without reading a tenant's whole backlog. Whether another tenant has a due export
-- was asked of every due queued export (each joined to its creator): with one tenant's hundreds
-- of exports waiting, every claim read all of them. Now it is asked of the creators of queued
-- exports, each found with its earliest run_at by one probe of this index (a loose scan): the
-- cost follows how many users have exports waiting, not how many exports.
-- The answers are the same as 0015's (its comments hold).
CREATE INDEX "analytics_exports_queued_created_by_idx" ON "analytics_exports" USING btree ("created_by", "run_at") WHERE "analytics_exports"."status" = 'queued';
--> statement-breakpoint

CREATE OR REPLACE FUNCTION analytics_export_take_turn(export_id uuid, max_running integer, retry_after interval) RETURNS boolean
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
    WITH RECURSIVE running AS MATERIALIZED (
      SELECT analytics_export_tenant(u.account_type, u.partner_id, u.customer_id) AS tenant, count(*) AS exports
        FROM analytics_exports e JOIN users u ON u.id = e.created_by
       WHERE e.status = 'running'
       GROUP BY 1
    ),
    -- Every user with a queued export and the earliest run_at of theirs, in created_by order:
    -- one probe of analytics_exports_queued_created_by_idx each.
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
      FROM running r
     WHERE r.tenant = export_tenant AND r.exports >= max_running
       AND EXISTS (
             SELECT 1
               FROM creators c JOIN users u ON u.id = c.created_by
              WHERE c.run_at <= now()
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
