-- Operations in psql (docs/operations.md): a view that answers "what is stuck, what failed and
-- why, what is running where", and retry_export, the operator's retry of a failed export.
-- cancel_export (0001) and rescue_stale_exports (0004) are the other operator actions.

-- One row per export, in the words an operator asks in. Columns that only mean something in
-- one state are null in the others: held_since and heartbeat_age while running, run_at while
-- queued. last_error is why it failed (errors) once failed, else the last transient fault.
CREATE VIEW analytics_export_jobs AS
SELECT e.id,
       e.status,
       e.attempts,
       e.max_attempts,
       CASE WHEN e.status = 'failed' THEN e.errors ELSE e.last_error END AS last_error,
       CASE WHEN e.status = 'failed' THEN e.errors ELSE e.last_error END ->> 'code' AS error_code,
       e.worker_id,
       CASE WHEN e.status = 'running' THEN e.started END AS held_since,
       CASE WHEN e.status = 'running' THEN now() - e.heartbeat_at END AS heartbeat_age,
       e.rows_written,
       e.bytes_written,
       CASE WHEN e.status = 'queued' THEN e.run_at END AS run_at,
       e.created,
       e.started,
       e.finished,
       e.finished - e.started AS duration,
       e.query_id,
       e.created_by,
       e.name,
       e.cancel_requested_at,
       e.retry_of,
       e.object_key
  FROM analytics_exports e;
--> statement-breakpoint

-- Retry of a failed export: final states stay final, so this creates a new export with the failed
-- one's definition (name, notes, query, creator, scopes, tags, attempt budget) and returns its id.
-- The new row is a plain INSERT: born queued, its job added by the enqueue trigger, its rows still
-- restricted to what the creator may see when it runs. retry_of keeps the lineage.
-- Refused, with a SQLSTATE a script can branch on:
--   P0002 no export with that id;
--   AE002 the export is not failed (queued and running ones run anyway, complete ones succeeded);
--   AE003 it was already retried (retry the newest export of the chain instead).
CREATE FUNCTION retry_export(export_id uuid) RETURNS uuid LANGUAGE plpgsql AS $$
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
    (created_by, name, notes, query_id, tags, customer_scopes, partner_scopes, max_attempts, retry_of)
  VALUES
    (original.created_by, original.name, original.notes, original.query_id, original.tags,
     original.customer_scopes, original.partner_scopes, original.max_attempts, original.id)
  RETURNING id INTO new_id;
  RETURN new_id;
END
$$;
