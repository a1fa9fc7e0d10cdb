-- Sliced exports (0014) are rescued like unsliced ones, their leftovers go at once, and their
-- progress is their slices' (docs/export-job.md "Slices", docs/operations.md).

-- The job key of a slice's job: one job per slice, replaced when the slice is queued again.
CREATE FUNCTION analytics_export_slice_job_key(export_id uuid, slice_number integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT format('analytics_export_slice:%s:%s', export_id, slice_number)
$$;
--> statement-breakpoint

-- Adds (or replaces) the job that wakes a worker to run the slice at run_at; as an export's job, a
-- wake-up call only: the slice's guarded claim decides who runs it.
CREATE FUNCTION enqueue_analytics_export_slice(export_id uuid, slice_number integer, run_at timestamptz) RETURNS void
LANGUAGE sql VOLATILE AS $$
  SELECT FROM graphile_worker.add_job(
    'analytics_export_slice',
    json_build_object('export_id', enqueue_analytics_export_slice.export_id,
                      'slice_number', enqueue_analytics_export_slice.slice_number),
    run_at := enqueue_analytics_export_slice.run_at,
    max_attempts := 3::smallint,
    job_key := analytics_export_slice_job_key(enqueue_analytics_export_slice.export_id, enqueue_analytics_export_slice.slice_number),
    job_key_mode := 'replace'
  )
$$;
--> statement-breakpoint

-- 0014's trigger function, through the one definition above.
CREATE OR REPLACE FUNCTION analytics_export_slices_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM enqueue_analytics_export_slice(NEW.export_id, NEW.slice_number, NEW.run_at);
  RETURN NULL;
END
$$;
--> statement-breakpoint

-- Whether a graphile-worker job with this key can still run: it has attempts left and no worker
-- has held it for longer than `stale_after` (a worker that died holding it keeps it locked for
-- four hours).
CREATE FUNCTION analytics_export_job_runnable(job_key text, stale_after interval) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (
    SELECT 1 FROM graphile_worker.jobs j
     WHERE j.key = analytics_export_job_runnable.job_key
       AND j.attempts < j.max_attempts
       AND (j.locked_at IS NULL OR j.locked_at > now() - analytics_export_job_runnable.stale_after))
$$;
--> statement-breakpoint

-- The rescuer looks for queued slices every few seconds, without reading every slice ever made.
CREATE INDEX analytics_export_slices_queued_run_at_idx ON analytics_export_slices (run_at) WHERE status = 'queued';
--> statement-breakpoint

-- requeue_orphaned_exports (0007, 0012), same signature, unchanged for unsliced exports, and now
-- also for sliced ones, whose work is in their slices' jobs and their finishing job:
-- - a queued slice due for longer than `stale_after` without a runnable job gets a fresh one;
-- - a running sliced export whose slices are all complete, the last for longer than
--   `stale_after`, without a runnable `analytics_export_finish` job, is settled again
--   (settle_sliced_export adds that job).
-- A running slice needs no job: its worker's heartbeat carries it, and if that worker dies,
-- rescue_stale_exports queues the slice again, which adds its job. A slice or export that has a
-- runnable job is left alone, so nothing runs twice. Rows another transaction holds are skipped
-- (the next call sees them). Returns the ids of the exports it gave a job (for a slice: its export).
CREATE OR REPLACE FUNCTION requeue_orphaned_exports(stale_after interval) RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN QUERY
  WITH orphans AS MATERIALIZED (
    SELECT e.id
      FROM analytics_exports e
     WHERE e.status = 'queued'
       AND e.run_at < now() - stale_after
       AND NOT analytics_export_job_runnable(analytics_export_job_key(e.id), stale_after)
       FOR UPDATE OF e SKIP LOCKED
  )
  SELECT o.id
    FROM orphans o
   CROSS JOIN LATERAL enqueue_analytics_export(o.id, now()) AS added;

  RETURN QUERY
  WITH orphans AS MATERIALIZED (
    SELECT s.export_id, s.slice_number
      FROM analytics_export_slices s
     WHERE s.status = 'queued'
       AND s.run_at < now() - stale_after
       AND NOT analytics_export_job_runnable(analytics_export_slice_job_key(s.export_id, s.slice_number), stale_after)
       FOR UPDATE OF s SKIP LOCKED
  ), added AS MATERIALIZED (
    SELECT o.export_id
      FROM orphans o
     CROSS JOIN LATERAL enqueue_analytics_export_slice(o.export_id, o.slice_number, now()) AS added
  )
  SELECT DISTINCT a.export_id FROM added a;

  RETURN QUERY
  WITH orphans AS MATERIALIZED (
    SELECT e.id
      FROM analytics_exports e
     WHERE e.status = 'running'
       AND e.slices IS NOT NULL
       AND e.cancel_requested_at IS NULL
       AND NOT EXISTS (SELECT FROM analytics_export_slices s
                        WHERE s.export_id = e.id AND (s.status <> 'complete' OR s.finished >= now() - stale_after))
       AND NOT analytics_export_job_runnable('analytics_export_finish:' || e.id, stale_after)
       FOR UPDATE OF e SKIP LOCKED
  )
  SELECT o.id
    FROM orphans o
   CROSS JOIN LATERAL settle_sliced_export(o.id) AS settled;
END
$$;
--> statement-breakpoint

-- When a sliced export fails (a slice failed, or it was cancelled), the files its complete
-- slices wrote will never be owned: the job `analytics_export_discard_slices` deletes them at once
-- rather than leaving them to the hourly orphan sweep (which still removes anything it could not).
CREATE FUNCTION analytics_exports_discard_sliced_files() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM analytics_export_slices WHERE export_id = NEW.id AND status = 'complete') THEN
    PERFORM graphile_worker.add_job(
      'analytics_export_discard_slices',
      json_build_object('export_id', NEW.id),
      max_attempts := 10::smallint,
      job_key := 'analytics_export_discard_slices:' || NEW.id,
      job_key_mode := 'replace');
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_exports_discard_sliced_files
  AFTER UPDATE OF status ON analytics_exports
  FOR EACH ROW WHEN (NEW.status = 'failed' AND OLD.status <> 'failed' AND NEW.slices IS NOT NULL)
  EXECUTE FUNCTION analytics_exports_discard_sliced_files();
--> statement-breakpoint

-- The progress of a sliced export, from its slices: the rows and bytes of its complete slices
-- plus what its running slices have written so far (a queued slice counts nothing: it starts
-- over), and its latest sign of life: the export's own heartbeat (when it was sliced), a running
-- slice's heartbeat, or a slice's end.
CREATE FUNCTION sliced_export_progress(sliced_export_id uuid, OUT rows_written bigint, OUT bytes_written bigint, OUT heartbeat_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT coalesce(sum(CASE s.status WHEN 'complete' THEN s.number_of_rows WHEN 'running' THEN s.rows_written END), 0)::bigint,
         coalesce(sum(CASE s.status WHEN 'complete' THEN s.total_bytes WHEN 'running' THEN s.bytes_written END), 0)::bigint,
         greatest(max(s.heartbeat_at), max(s.finished), (SELECT e.heartbeat_at FROM analytics_exports e WHERE e.id = sliced_export_id))
    FROM analytics_export_slices s
   WHERE s.export_id = sliced_export_id
$$;
--> statement-breakpoint

-- analytics_export_jobs (0006), the same columns: a running sliced export's rows_written,
-- bytes_written and heartbeat_age are its slices' (sliced_export_progress).
CREATE OR REPLACE VIEW analytics_export_jobs AS
SELECT e.id,
       e.status,
       e.attempts,
       e.max_attempts,
       CASE WHEN e.status = 'failed' THEN e.errors ELSE e.last_error END AS last_error,
       CASE WHEN e.status = 'failed' THEN e.errors ELSE e.last_error END ->> 'code' AS error_code,
       e.worker_id,
       CASE WHEN e.status = 'running' THEN e.started END AS held_since,
       CASE WHEN e.status = 'running' AND e.slices IS NOT NULL THEN now() - (sliced_export_progress(e.id)).heartbeat_at
            WHEN e.status = 'running' THEN now() - e.heartbeat_at END AS heartbeat_age,
       CASE WHEN e.status = 'running' AND e.slices IS NOT NULL THEN (sliced_export_progress(e.id)).rows_written
            ELSE e.rows_written END AS rows_written,
       CASE WHEN e.status = 'running' AND e.slices IS NOT NULL THEN (sliced_export_progress(e.id)).bytes_written
            ELSE e.bytes_written END AS bytes_written,
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
