-- The export status machine, enforced by the database (docs/state-machine.md draws it):
--
--   queued -> running -> complete
--      |         |  \-> failed
--      |         \-> queued      (retry after a transient fault, or rescue after a dead worker)
--      \-> failed                (cancelled, or rejected before it ran)
--
-- complete and failed are final. Whatever writes the table (the worker, the API, an operator in
-- psql) goes through the same trigger and CHECKs, so an impossible row cannot exist.

-- "modified" is kept by the database on every table that has it.
CREATE FUNCTION set_modified() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.modified := now();
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER partners_modified BEFORE UPDATE ON partners FOR EACH ROW EXECUTE FUNCTION set_modified();
--> statement-breakpoint
CREATE TRIGGER customers_modified BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION set_modified();
--> statement-breakpoint
CREATE TRIGGER users_modified BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_modified();
--> statement-breakpoint
CREATE TRIGGER spaces_modified BEFORE UPDATE ON spaces FOR EACH ROW EXECUTE FUNCTION set_modified();
--> statement-breakpoint
CREATE TRIGGER devices_modified BEFORE UPDATE ON devices FOR EACH ROW EXECUTE FUNCTION set_modified();
--> statement-breakpoint
CREATE TRIGGER analytics_queries_modified BEFORE UPDATE ON analytics_queries FOR EACH ROW EXECUTE FUNCTION set_modified();
--> statement-breakpoint

-- Tags: at most 50 characters each, none empty (the API contract's limit, docs/api.md).
CREATE FUNCTION tags_are_valid(tags text[]) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(bool_and(t IS NOT NULL AND char_length(t) BETWEEN 1 AND 50), true) FROM unnest(tags) AS t
$$;
--> statement-breakpoint
ALTER TABLE analytics_queries ADD CONSTRAINT analytics_queries_tags_valid CHECK (tags_are_valid(tags));
--> statement-breakpoint

ALTER TABLE analytics_exports
  ADD CONSTRAINT analytics_exports_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
  ADD CONSTRAINT analytics_exports_tags_valid CHECK (tags_are_valid(tags)),
  ADD CONSTRAINT analytics_exports_complete_has_results
    CHECK (status <> 'complete' OR (number_of_rows IS NOT NULL AND total_bytes IS NOT NULL AND object_key IS NOT NULL)),
  ADD CONSTRAINT analytics_exports_results_only_when_complete
    CHECK (status = 'complete' OR (number_of_rows IS NULL AND total_bytes IS NULL)),
  ADD CONSTRAINT analytics_exports_failed_has_errors CHECK ((status = 'failed') = (errors IS NOT NULL)),
  ADD CONSTRAINT analytics_exports_errors_shape
    CHECK (errors IS NULL OR (jsonb_typeof(errors) = 'object' AND coalesce(jsonb_typeof(errors -> 'code'), '') = 'string')),
  ADD CONSTRAINT analytics_exports_final_has_finished
    CHECK ((status IN ('complete', 'failed')) = (finished IS NOT NULL)),
  ADD CONSTRAINT analytics_exports_running_is_held
    CHECK (status <> 'running' OR (worker_id IS NOT NULL AND heartbeat_at IS NOT NULL AND started IS NOT NULL)),
  ADD CONSTRAINT analytics_exports_counts_not_negative
    CHECK (coalesce(number_of_rows, 0) >= 0 AND coalesce(total_bytes, 0) >= 0
       AND coalesce(rows_written, 0) >= 0 AND coalesce(bytes_written, 0) >= 0),
  ADD CONSTRAINT analytics_exports_attempts_in_range CHECK (attempts >= 0 AND max_attempts >= 1);
--> statement-breakpoint

CREATE FUNCTION analytics_export_transition_allowed(from_status export_status, to_status export_status)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (from_status, to_status) IN (
    ('queued'::export_status,  'running'::export_status),
    ('queued',                 'failed'),
    ('running',                'complete'),
    ('running',                'failed'),
    ('running',                'queued')
  )
$$;
--> statement-breakpoint

-- Refuses every transition not drawn above (SQLSTATE AE001, naming both states), and keeps the
-- bookkeeping that follows from a transition so that no writer can forget it: each claim counts
-- an attempt, a final state gets its finish time, and leaving "running" releases the worker.
CREATE FUNCTION analytics_exports_guard_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'queued' THEN
      RAISE EXCEPTION 'an analytics export must be created queued, not %', NEW.status
        USING ERRCODE = 'AE001', HINT = 'insert it without a status; workers move it on';
    END IF;
    NEW.attempts := 0;
    NEW.modified := NEW.created;
    RETURN NEW;
  END IF;

  NEW.modified := now();
  IF NEW.status = OLD.status THEN
    RETURN NEW;
  END IF;
  IF NOT analytics_export_transition_allowed(OLD.status, NEW.status) THEN
    RAISE EXCEPTION 'illegal analytics export status transition: % -> %', OLD.status, NEW.status
      USING ERRCODE = 'AE001',
            DETAIL = format('export %s', OLD.id),
            HINT = 'allowed: queued -> running|failed, running -> complete|failed|queued; complete and failed are final';
  END IF;

  IF NEW.status = 'running' THEN
    NEW.attempts := OLD.attempts + 1;
    NEW.started := now();
    NEW.heartbeat_at := coalesce(NEW.heartbeat_at, now());
    NEW.rows_written := 0;
    NEW.bytes_written := 0;
  ELSE
    -- Leaving running (or queued): nobody holds it any more, progress belongs to the old attempt.
    NEW.worker_id := NULL;
    NEW.heartbeat_at := NULL;
    IF NEW.status = 'queued' THEN
      NEW.rows_written := NULL;
      NEW.bytes_written := NULL;
    END IF;
  END IF;
  IF NEW.status IN ('complete', 'failed') THEN
    NEW.finished := coalesce(NEW.finished, now());
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_exports_guard_status
  BEFORE INSERT OR UPDATE ON analytics_exports
  FOR EACH ROW EXECUTE FUNCTION analytics_exports_guard_status();
--> statement-breakpoint

-- The queue follows the table: whenever an export becomes queued (created, retried after a
-- transient fault, rescued from a dead worker) a graphile-worker job is added in the same
-- transaction, so an export and its job commit together or not at all. The job is only a
-- wake-up call; the guarded claim (UPDATE ... WHERE status = 'queued') decides who runs it.
CREATE FUNCTION analytics_exports_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM graphile_worker.add_job(
    'analytics_export',
    json_build_object('export_id', NEW.id),
    run_at := NEW.run_at,
    max_attempts := 3::smallint,
    job_key := 'analytics_export:' || NEW.id,
    job_key_mode := 'replace'
  );
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_exports_enqueue_new
  AFTER INSERT ON analytics_exports
  FOR EACH ROW EXECUTE FUNCTION analytics_exports_enqueue();
--> statement-breakpoint
CREATE TRIGGER analytics_exports_enqueue_again
  AFTER UPDATE OF status ON analytics_exports
  FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
  EXECUTE FUNCTION analytics_exports_enqueue();
--> statement-breakpoint

-- Cancel: one statement for a queued export (failed at once), a request plus a NOTIFY to the
-- worker holding a running one (it stops the COPY and fails the export). Returns the status
-- after the call, or NULL when there is no such export.
CREATE FUNCTION cancel_export(export_id uuid) RETURNS export_status LANGUAGE plpgsql AS $$
DECLARE
  result export_status;
BEGIN
  UPDATE analytics_exports
     SET status = 'failed',
         errors = jsonb_build_object('code', 'cancelled', 'message', 'the export was cancelled before it ran')
   WHERE id = export_id AND status = 'queued'
  RETURNING status INTO result;
  IF FOUND THEN
    RETURN result;
  END IF;

  UPDATE analytics_exports
     SET cancel_requested_at = coalesce(cancel_requested_at, now())
   WHERE id = export_id AND status = 'running'
  RETURNING status INTO result;
  IF FOUND THEN
    PERFORM pg_notify('analytics_export_cancel', export_id::text);
    RETURN result;
  END IF;

  SELECT status INTO result FROM analytics_exports WHERE id = export_id;
  RETURN result;
END
$$;
