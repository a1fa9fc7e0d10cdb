-- Every impossible row is refused, not only impossible transitions (docs/state-machine.md).
--
-- The bookkeeping columns (worker_id, heartbeat_at, started, finished, attempts) belong to the
-- status trigger: a writer never sets them, except the claim's worker_id, the heartbeat's
-- heartbeat_at = now() and the attempt a shutdown gives back. A new export carries none of
-- them and no results. A final export's results and history never change. A cancel requested
-- while an export runs wins over its completion. Refusals raise SQLSTATE AE001 naming the
-- columns; the rest are CHECKs.

-- Rows written before these rules: an export re-queued by a shutdown on its last attempt (it
-- could then run once more than max_attempts) gets the budget it already used.
UPDATE analytics_exports SET max_attempts = attempts + 1 WHERE status = 'queued' AND attempts >= max_attempts;
--> statement-breakpoint
UPDATE analytics_exports SET max_attempts = attempts WHERE attempts > max_attempts;
--> statement-breakpoint

-- Writes the list of columns whose value a statement may not carry, or NULL when there is none.
CREATE FUNCTION analytics_export_columns_named(columns text[]) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT nullif(array_to_string(columns, ', '), '')
$$;
--> statement-breakpoint

CREATE OR REPLACE FUNCTION analytics_exports_guard_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  refused text;
  is_claim boolean;
  gives_attempt_back boolean;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'queued' THEN
      RAISE EXCEPTION 'an analytics export must be created queued, not %', NEW.status
        USING ERRCODE = 'AE001', HINT = 'insert it without a status; workers move it on';
    END IF;
    refused := analytics_export_columns_named(ARRAY[
      CASE WHEN NEW.worker_id IS NOT NULL THEN 'worker_id' END,
      CASE WHEN NEW.heartbeat_at IS NOT NULL THEN 'heartbeat_at' END,
      CASE WHEN NEW.started IS NOT NULL THEN 'started' END,
      CASE WHEN NEW.finished IS NOT NULL THEN 'finished' END,
      CASE WHEN NEW.attempts <> 0 THEN 'attempts' END,
      CASE WHEN NEW.cancel_requested_at IS NOT NULL THEN 'cancel_requested_at' END,
      CASE WHEN NEW.object_key IS NOT NULL THEN 'object_key' END,
      CASE WHEN NEW.number_of_rows IS NOT NULL THEN 'number_of_rows' END,
      CASE WHEN NEW.total_bytes IS NOT NULL THEN 'total_bytes' END,
      CASE WHEN NEW.rows_written IS NOT NULL THEN 'rows_written' END,
      CASE WHEN NEW.bytes_written IS NOT NULL THEN 'bytes_written' END,
      CASE WHEN NEW.errors IS NOT NULL THEN 'errors' END]);
    IF refused IS NOT NULL THEN
      RAISE EXCEPTION 'a new analytics export cannot carry %', refused
        USING ERRCODE = 'AE001',
              HINT = 'insert only its definition (name, notes, query, scopes, tags, max_attempts); workers and the status trigger fill the rest';
    END IF;
    NEW.modified := NEW.created;
    RETURN NEW;
  END IF;

  NEW.modified := now();
  IF NEW.status <> OLD.status AND NOT analytics_export_transition_allowed(OLD.status, NEW.status) THEN
    RAISE EXCEPTION 'illegal analytics export status transition: % -> %', OLD.status, NEW.status
      USING ERRCODE = 'AE001',
            DETAIL = format('export %s', OLD.id),
            HINT = 'allowed: queued -> running|failed, running -> complete|failed|queued; complete and failed are final';
  END IF;

  -- A final export is a record: what it produced and when stay as they were.
  IF OLD.status IN ('complete', 'failed') THEN
    refused := analytics_export_columns_named(ARRAY[
      CASE WHEN NEW.object_key IS DISTINCT FROM OLD.object_key THEN 'object_key' END,
      CASE WHEN NEW.number_of_rows IS DISTINCT FROM OLD.number_of_rows THEN 'number_of_rows' END,
      CASE WHEN NEW.total_bytes IS DISTINCT FROM OLD.total_bytes THEN 'total_bytes' END,
      CASE WHEN NEW.rows_written IS DISTINCT FROM OLD.rows_written THEN 'rows_written' END,
      CASE WHEN NEW.bytes_written IS DISTINCT FROM OLD.bytes_written THEN 'bytes_written' END,
      CASE WHEN NEW.errors IS DISTINCT FROM OLD.errors THEN 'errors' END,
      CASE WHEN NEW.last_error IS DISTINCT FROM OLD.last_error THEN 'last_error' END,
      CASE WHEN NEW.cancel_requested_at IS DISTINCT FROM OLD.cancel_requested_at THEN 'cancel_requested_at' END,
      CASE WHEN NEW.max_attempts IS DISTINCT FROM OLD.max_attempts THEN 'max_attempts' END]);
    IF refused IS NOT NULL THEN
      RAISE EXCEPTION 'a % analytics export cannot change: %', OLD.status, refused
        USING ERRCODE = 'AE001', DETAIL = format('export %s', OLD.id),
              HINT = 'complete and failed exports are final; retry_export() makes a new one';
    END IF;
  END IF;

  -- Who holds the export, since when and for which attempt: written by the claim alone.
  is_claim := OLD.status = 'queued' AND NEW.status = 'running';
  -- A shutdown hands its attempt back on the way to queued (it was not the export's fault).
  gives_attempt_back := OLD.status = 'running' AND NEW.status = 'queued' AND NEW.attempts = OLD.attempts - 1;
  refused := analytics_export_columns_named(ARRAY[
    CASE WHEN NOT is_claim AND NEW.worker_id IS DISTINCT FROM OLD.worker_id THEN 'worker_id' END,
    CASE WHEN NEW.started IS DISTINCT FROM OLD.started THEN 'started' END,
    CASE WHEN NEW.finished IS DISTINCT FROM OLD.finished THEN 'finished' END,
    CASE WHEN NEW.attempts IS DISTINCT FROM OLD.attempts AND NOT gives_attempt_back THEN 'attempts' END,
    -- The heartbeat of the running attempt writes now(), and nothing else writes it.
    CASE WHEN NEW.heartbeat_at IS DISTINCT FROM OLD.heartbeat_at
          AND NOT (OLD.status = 'running' AND NEW.status = 'running' AND NEW.heartbeat_at IS NOT DISTINCT FROM now())
          THEN 'heartbeat_at' END]);
  IF refused IS NOT NULL THEN
    RAISE EXCEPTION 'analytics export % -> %: % cannot be set by this statement', OLD.status, NEW.status, refused
      USING ERRCODE = 'AE001', DETAIL = format('export %s', OLD.id),
            HINT = 'only a claim (queued -> running) sets worker_id; started, finished, attempts and heartbeat_at follow from the transitions';
  END IF;

  IF OLD.status = 'running' AND NEW.status = 'complete' AND NEW.cancel_requested_at IS NOT NULL THEN
    RAISE EXCEPTION 'analytics export % was cancelled: it cannot complete', OLD.id
      USING ERRCODE = 'AE001', HINT = 'fail it with errors.code "cancelled"';
  END IF;

  IF NEW.status = OLD.status THEN
    RETURN NEW;
  END IF;

  IF is_claim THEN
    NEW.attempts := OLD.attempts + 1;
    NEW.started := now();
    NEW.heartbeat_at := now();
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
    NEW.finished := now();
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint

ALTER TABLE analytics_exports
  ADD CONSTRAINT analytics_exports_only_running_is_held
    CHECK (status = 'running' OR (worker_id IS NULL AND heartbeat_at IS NULL)),
  ADD CONSTRAINT analytics_exports_object_key_only_when_complete
    CHECK (status = 'complete' OR object_key IS NULL),
  ADD CONSTRAINT analytics_exports_object_key_under_its_prefix
    CHECK (object_key IS NULL OR starts_with(object_key, 'anx_export_' || id::text || '/')),
  ADD CONSTRAINT analytics_exports_timestamps_ordered
    CHECK ((started IS NULL OR created <= started)
       AND (finished IS NULL OR coalesce(started, created) <= finished)),
  ADD CONSTRAINT analytics_exports_attempts_within_max CHECK (attempts <= max_attempts),
  ADD CONSTRAINT analytics_exports_queued_has_an_attempt_left CHECK (status <> 'queued' OR attempts < max_attempts);
