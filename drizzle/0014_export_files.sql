-- The files of a complete export. An export larger than EXPORT_MAX_FILE_MIB is written as several
-- files, each complete in its format, in the export's row order (file_number from 1); a smaller
-- one is one file. The completion saves them in the statement that completes the export, whose
-- number_of_rows and total_bytes are their sums; the export's object_key is what its url
-- downloads (the one file, or the manifest listing several). The files go with their export.
CREATE TABLE analytics_export_files (
  export_id uuid NOT NULL REFERENCES analytics_exports (id) ON DELETE CASCADE,
  file_number integer NOT NULL,
  object_key text NOT NULL,
  number_of_rows bigint NOT NULL,
  total_bytes bigint NOT NULL,
  PRIMARY KEY (export_id, file_number),
  CONSTRAINT analytics_export_files_number_positive CHECK (file_number >= 1),
  CONSTRAINT analytics_export_files_counts_not_negative CHECK (number_of_rows >= 0 AND total_bytes >= 0),
  CONSTRAINT analytics_export_files_key_under_its_prefix CHECK (starts_with(object_key, 'anx_export_' || export_id::text || '/'))
);
--> statement-breakpoint
CREATE INDEX analytics_export_files_object_key_idx ON analytics_export_files (object_key);
--> statement-breakpoint

-- Exports completed before files were recorded had one file: their object.
INSERT INTO analytics_export_files (export_id, file_number, object_key, number_of_rows, total_bytes)
SELECT id, 1, object_key, number_of_rows, total_bytes FROM analytics_exports WHERE status = 'complete';
--> statement-breakpoint

-- A file belongs to a complete export and is a record as the export is: it is added with the
-- completion and never changed (SQLSTATE AE001).
CREATE FUNCTION analytics_export_files_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'the files of an analytics export cannot change'
      USING ERRCODE = 'AE001', DETAIL = format('export %s, file %s', OLD.export_id, OLD.file_number);
  END IF;
  IF NOT EXISTS (SELECT FROM analytics_exports e WHERE e.id = NEW.export_id AND e.status = 'complete') THEN
    RAISE EXCEPTION 'files are added to an analytics export only by its completion'
      USING ERRCODE = 'AE001', DETAIL = format('export %s', NEW.export_id);
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_export_files_guard
  AFTER INSERT OR UPDATE ON analytics_export_files
  FOR EACH ROW EXECUTE FUNCTION analytics_export_files_guard();
--> statement-breakpoint

-- Slices: an export whose planner estimate passes EXPORT_SLICE_ROWS is divided by its worker into
-- time slices (slice_analytics_export), each a row here with a status machine of its own (the
-- export's transitions, the same bookkeeping) and a graphile-worker job of its own, which any
-- worker may run. The export stays `running` while its slices run: `slices` says how many it has.
-- The fan-in is here too: when the last slice completes, the job that writes the manifest and
-- completes the export (complete_sliced_export, with the sums) is added; when a slice fails or the
-- export is cancelled, the queued slices fail and, once no slice runs, the export fails.
ALTER TABLE analytics_exports ADD COLUMN slices integer;
--> statement-breakpoint
ALTER TABLE analytics_exports ADD CONSTRAINT analytics_exports_slices_positive CHECK (slices IS NULL OR slices >= 2);
--> statement-breakpoint
CREATE TABLE analytics_export_slices (
  export_id uuid NOT NULL REFERENCES analytics_exports (id) ON DELETE CASCADE,
  slice_number integer NOT NULL,
  -- The slice's rows are the export's rows with range_start <= ts < range_end, in the export's order.
  range_start timestamptz NOT NULL,
  range_end timestamptz NOT NULL,
  status export_status NOT NULL DEFAULT 'queued',
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL,
  worker_id text,
  heartbeat_at timestamptz(6),
  run_at timestamptz(6) NOT NULL DEFAULT now(),
  started timestamptz(6),
  finished timestamptz(6),
  rows_written bigint,
  bytes_written bigint,
  errors jsonb,
  last_error jsonb,
  -- Set when complete: the slice's files in order ([{"key", "rows", "bytes"}]) and their sums.
  files jsonb,
  number_of_rows bigint,
  total_bytes bigint,
  PRIMARY KEY (export_id, slice_number),
  CONSTRAINT analytics_export_slices_number_positive CHECK (slice_number >= 1),
  CONSTRAINT analytics_export_slices_range CHECK (range_end > range_start),
  CONSTRAINT analytics_export_slices_running_is_held
    CHECK ((status = 'running') = (worker_id IS NOT NULL AND heartbeat_at IS NOT NULL)),
  CONSTRAINT analytics_export_slices_failed_has_errors CHECK ((status = 'failed') = (errors IS NOT NULL)),
  CONSTRAINT analytics_export_slices_complete_has_files
    CHECK ((status = 'complete') = (files IS NOT NULL AND number_of_rows IS NOT NULL AND total_bytes IS NOT NULL)),
  CONSTRAINT analytics_export_slices_final_has_finished CHECK ((status IN ('complete', 'failed')) = (finished IS NOT NULL)),
  CONSTRAINT analytics_export_slices_attempts_in_range CHECK (attempts >= 0 AND attempts <= max_attempts),
  CONSTRAINT analytics_export_slices_queued_has_an_attempt_left CHECK (status <> 'queued' OR attempts < max_attempts)
);
--> statement-breakpoint
CREATE INDEX analytics_export_slices_running_heartbeat_idx ON analytics_export_slices (heartbeat_at) WHERE status = 'running';
--> statement-breakpoint

-- The export's transitions, and the bookkeeping that follows from them (as analytics_exports').
CREATE FUNCTION analytics_export_slices_guard_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'queued' OR NEW.attempts <> 0 OR NEW.worker_id IS NOT NULL OR NEW.files IS NOT NULL OR NEW.errors IS NOT NULL THEN
      RAISE EXCEPTION 'an analytics export slice must be created queued, with no attempt and no result' USING ERRCODE = 'AE001';
    END IF;
    RETURN NEW;
  END IF;
  IF OLD.status IN ('complete', 'failed') AND (NEW IS DISTINCT FROM OLD) THEN
    RAISE EXCEPTION 'a % analytics export slice cannot change', OLD.status
      USING ERRCODE = 'AE001', DETAIL = format('export %s, slice %s', OLD.export_id, OLD.slice_number);
  END IF;
  IF NEW.status = OLD.status THEN
    RETURN NEW;
  END IF;
  IF NOT analytics_export_transition_allowed(OLD.status, NEW.status) THEN
    RAISE EXCEPTION 'illegal analytics export slice status transition: % -> %', OLD.status, NEW.status
      USING ERRCODE = 'AE001', DETAIL = format('export %s, slice %s', OLD.export_id, OLD.slice_number),
            HINT = 'allowed: queued -> running|failed, running -> complete|failed|queued; complete and failed are final';
  END IF;
  IF OLD.status = 'queued' AND NEW.status = 'running' THEN
    NEW.attempts := OLD.attempts + 1;
    NEW.started := now();
    NEW.heartbeat_at := now();
    NEW.rows_written := 0;
    NEW.bytes_written := 0;
  ELSE
    NEW.worker_id := NULL;
    NEW.heartbeat_at := NULL;
  END IF;
  IF NEW.status IN ('complete', 'failed') THEN
    NEW.finished := now();
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_export_slices_guard_status
  BEFORE INSERT OR UPDATE ON analytics_export_slices
  FOR EACH ROW EXECUTE FUNCTION analytics_export_slices_guard_status();
--> statement-breakpoint

-- A queued slice has a job (its only a wake-up call: the guarded claim decides who runs it).
CREATE FUNCTION analytics_export_slices_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM graphile_worker.add_job(
    'analytics_export_slice',
    json_build_object('export_id', NEW.export_id, 'slice_number', NEW.slice_number),
    run_at := NEW.run_at,
    max_attempts := 3::smallint,
    job_key := format('analytics_export_slice:%s:%s', NEW.export_id, NEW.slice_number),
    job_key_mode := 'replace');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_export_slices_enqueue_new
  AFTER INSERT ON analytics_export_slices
  FOR EACH ROW EXECUTE FUNCTION analytics_export_slices_enqueue();
--> statement-breakpoint
CREATE TRIGGER analytics_export_slices_enqueue_again
  AFTER UPDATE OF status ON analytics_export_slices
  FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
  EXECUTE FUNCTION analytics_export_slices_enqueue();
--> statement-breakpoint

-- The fan-in, run whenever a slice reaches a final state or a sliced export is asked to cancel,
-- under the export's row lock (so that two slices finishing at once see each other):
-- - cancelled, or a slice failed: the queued slices fail, and once no slice runs the export fails
--   (`cancelled`, or the first failed slice's errors with its slice number);
-- - every slice complete: the job that completes the export is added.
CREATE FUNCTION settle_sliced_export(sliced_export_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  parent analytics_exports%ROWTYPE;
  failed_slice analytics_export_slices%ROWTYPE;
BEGIN
  SELECT * INTO parent FROM analytics_exports WHERE id = sliced_export_id FOR UPDATE;
  IF NOT FOUND OR parent.status <> 'running' OR parent.slices IS NULL THEN
    RETURN;
  END IF;
  SELECT * INTO failed_slice FROM analytics_export_slices
   WHERE export_id = sliced_export_id AND status = 'failed' AND errors ->> 'code' <> 'cancelled'
   ORDER BY slice_number LIMIT 1;
  IF parent.cancel_requested_at IS NOT NULL OR failed_slice.export_id IS NOT NULL THEN
    UPDATE analytics_export_slices
       SET status = 'failed',
           errors = jsonb_build_object('code', 'cancelled', 'message',
                      CASE WHEN parent.cancel_requested_at IS NOT NULL THEN 'the export was cancelled before this slice ran'
                           ELSE format('slice %s failed before this slice ran', failed_slice.slice_number) END)
     WHERE export_id = sliced_export_id AND status = 'queued';
    IF NOT EXISTS (SELECT FROM analytics_export_slices WHERE export_id = sliced_export_id AND status = 'running') THEN
      UPDATE analytics_exports
         SET status = 'failed',
             errors = CASE WHEN parent.cancel_requested_at IS NOT NULL
                           THEN jsonb_build_object('code', 'cancelled', 'message', 'the export was cancelled while its slices ran')
                           ELSE failed_slice.errors || jsonb_build_object('slice', failed_slice.slice_number) END
       WHERE id = sliced_export_id AND status = 'running';
    END IF;
  ELSIF NOT EXISTS (SELECT FROM analytics_export_slices WHERE export_id = sliced_export_id AND status <> 'complete') THEN
    PERFORM graphile_worker.add_job(
      'analytics_export_finish',
      json_build_object('export_id', sliced_export_id),
      max_attempts := 10::smallint,
      job_key := 'analytics_export_finish:' || sliced_export_id,
      job_key_mode := 'replace');
  END IF;
END
$$;
--> statement-breakpoint
CREATE FUNCTION analytics_export_slices_settle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM settle_sliced_export(NEW.export_id);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_export_slices_settle
  AFTER UPDATE OF status ON analytics_export_slices
  FOR EACH ROW WHEN (NEW.status IN ('complete', 'failed') AND OLD.status <> NEW.status)
  EXECUTE FUNCTION analytics_export_slices_settle();
--> statement-breakpoint
CREATE FUNCTION analytics_exports_settle_cancelled_slices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM settle_sliced_export(NEW.id);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_exports_settle_cancelled_slices
  AFTER UPDATE OF cancel_requested_at ON analytics_exports
  FOR EACH ROW WHEN (NEW.slices IS NOT NULL AND OLD.cancel_requested_at IS NULL AND NEW.cancel_requested_at IS NOT NULL)
  EXECUTE FUNCTION analytics_exports_settle_cancelled_slices();
--> statement-breakpoint

-- The fan-out: the attempt holding the export (id, worker_id, attempts) divides it at the given
-- boundaries (ascending, strictly inside the export's time range) into slices that inherit its
-- attempt budget. False when the attempt no longer holds it, or it was cancelled.
CREATE FUNCTION slice_analytics_export(sliced_export_id uuid, holder text, attempt integer, boundaries timestamptz[])
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  parent analytics_exports%ROWTYPE;
  edges timestamptz[];
BEGIN
  SELECT * INTO parent FROM analytics_exports
   WHERE id = sliced_export_id AND status = 'running' AND worker_id = holder AND attempts = attempt
     AND cancel_requested_at IS NULL AND slices IS NULL
   FOR UPDATE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  edges := ARRAY[(parent.query_definition ->> 'start')::timestamptz] || boundaries
        || ARRAY[(parent.query_definition ->> 'end')::timestamptz];
  UPDATE analytics_exports SET slices = cardinality(edges) - 1 WHERE id = sliced_export_id;
  INSERT INTO analytics_export_slices (export_id, slice_number, range_start, range_end, max_attempts)
  SELECT sliced_export_id, i, edges[i], edges[i + 1], parent.max_attempts
    FROM generate_series(1, cardinality(edges) - 1) AS i;
  RETURN true;
END
$$;
--> statement-breakpoint

-- The export's completion once every slice is complete: its files are the slices' files in slice
-- order, its number_of_rows and total_bytes their sums, object_key the manifest the finishing job
-- wrote. False when it is not (or no longer) a running sliced export with every slice complete.
CREATE FUNCTION complete_sliced_export(sliced_export_id uuid, manifest_key text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM FROM analytics_exports WHERE id = sliced_export_id FOR UPDATE;
  UPDATE analytics_exports e
     SET status = 'complete', object_key = manifest_key,
         number_of_rows = s.rows, total_bytes = s.bytes, rows_written = s.rows, bytes_written = s.bytes
    FROM (SELECT sum(number_of_rows) AS rows, sum(total_bytes) AS bytes, count(*) FILTER (WHERE status = 'complete') AS complete
            FROM analytics_export_slices WHERE export_id = sliced_export_id) AS s
   WHERE e.id = sliced_export_id AND e.status = 'running' AND e.slices = s.complete AND e.cancel_requested_at IS NULL;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO analytics_export_files (export_id, file_number, object_key, number_of_rows, total_bytes)
  SELECT sliced_export_id, row_number() OVER (ORDER BY s.slice_number, f.n), f.file ->> 'key',
         (f.file ->> 'rows')::bigint, (f.file ->> 'bytes')::bigint
    FROM analytics_export_slices s
   CROSS JOIN LATERAL jsonb_array_elements(s.files) WITH ORDINALITY AS f(file, n)
   WHERE s.export_id = sliced_export_id;
  RETURN true;
END
$$;
--> statement-breakpoint

-- rescue_stale_exports (0004), the same for unsliced exports; a sliced export has no heartbeat of
-- its own (its slices do), so it is left out, and each slice whose heartbeat is older than
-- `stale_after` is rescued as an export is: queued again, or failed (`worker_lost`, `cancelled`).
-- Returns the ids of the exports it moved or whose slices it moved.
CREATE OR REPLACE FUNCTION rescue_stale_exports(stale_after interval) RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN QUERY
  UPDATE analytics_exports
     SET status = CASE
                    WHEN cancel_requested_at IS NOT NULL OR attempts >= max_attempts THEN 'failed'
                    ELSE 'queued'
                  END::export_status,
         errors = CASE
                    WHEN cancel_requested_at IS NOT NULL THEN
                      jsonb_build_object('code', 'cancelled',
                                         'message', 'the export was cancelled while its worker was lost')
                    WHEN attempts >= max_attempts THEN
                      jsonb_build_object('code', 'worker_lost',
                                         'message', format('worker %s stopped sending heartbeats during the last of %s attempts',
                                                           worker_id, max_attempts),
                                         'worker_id', worker_id)
                  END,
         last_error = CASE
                        WHEN cancel_requested_at IS NULL AND attempts < max_attempts THEN
                          jsonb_build_object('code', 'worker_lost',
                                             'message', format('worker %s stopped sending heartbeats (attempt %s of %s)',
                                                               worker_id, attempts, max_attempts),
                                             'worker_id', worker_id)
                        ELSE last_error
                      END,
         run_at = now()
   WHERE status = 'running'
     AND slices IS NULL
     AND heartbeat_at < now() - stale_after
  RETURNING id;

  RETURN QUERY
  WITH stale AS (
    SELECT s.export_id, s.slice_number, e.cancel_requested_at IS NOT NULL AS cancelled
      FROM analytics_export_slices s JOIN analytics_exports e ON e.id = s.export_id
     WHERE s.status = 'running' AND s.heartbeat_at < now() - stale_after
     ORDER BY s.export_id
       FOR UPDATE OF e)
  UPDATE analytics_export_slices s
     SET status = CASE WHEN stale.cancelled OR s.attempts >= s.max_attempts THEN 'failed' ELSE 'queued' END::export_status,
         errors = CASE
                    WHEN stale.cancelled THEN
                      jsonb_build_object('code', 'cancelled', 'message', 'the export was cancelled while the worker of this slice was lost')
                    WHEN s.attempts >= s.max_attempts THEN
                      jsonb_build_object('code', 'worker_lost',
                                         'message', format('worker %s stopped sending heartbeats during the last of %s attempts of slice %s',
                                                           s.worker_id, s.max_attempts, s.slice_number),
                                         'worker_id', s.worker_id)
                  END,
         last_error = CASE
                        WHEN NOT stale.cancelled AND s.attempts < s.max_attempts THEN
                          jsonb_build_object('code', 'worker_lost',
                                             'message', format('worker %s stopped sending heartbeats (slice %s, attempt %s of %s)',
                                                               s.worker_id, s.slice_number, s.attempts, s.max_attempts),
                                             'worker_id', s.worker_id)
                        ELSE s.last_error
                      END,
         run_at = now()
    FROM stale
   WHERE s.export_id = stale.export_id AND s.slice_number = stale.slice_number
     AND s.status = 'running' AND s.heartbeat_at < now() - stale_after
  RETURNING s.export_id;
END
$$;
--> statement-breakpoint

-- Beside analytics_export_jobs: one row per slice, in the words of that view.
CREATE VIEW analytics_export_slice_jobs AS
SELECT s.export_id,
       s.slice_number,
       e.slices,
       s.range_start,
       s.range_end,
       s.status,
       s.attempts,
       s.max_attempts,
       CASE WHEN s.status = 'failed' THEN s.errors ELSE s.last_error END AS last_error,
       CASE WHEN s.status = 'failed' THEN s.errors ELSE s.last_error END ->> 'code' AS error_code,
       s.worker_id,
       CASE WHEN s.status = 'running' THEN s.started END AS held_since,
       CASE WHEN s.status = 'running' THEN now() - s.heartbeat_at END AS heartbeat_age,
       s.rows_written,
       s.bytes_written,
       CASE WHEN s.status = 'queued' THEN s.run_at END AS run_at,
       s.started,
       s.finished,
       s.finished - s.started AS duration,
       s.number_of_rows,
       s.total_bytes
  FROM analytics_export_slices s
  JOIN analytics_exports e ON e.id = s.export_id;
