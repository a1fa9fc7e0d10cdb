-- One definition of how an export is put on graphile-worker's queue: the task name, the job key
-- and the job's options, which 0001 (the enqueue trigger) and 0007 (requeue_orphaned_exports)
-- each spelled out. Both functions are redefined to call it, with the same signatures and
-- behaviour. The task name is also ANALYTICS_EXPORT_TASK in TypeScript (the worker's task list).

-- The job key of an export's job: one job per export, replaced when it is queued again.
CREATE FUNCTION analytics_export_job_key(export_id uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 'analytics_export:' || export_id
$$;
--> statement-breakpoint

-- Adds (or replaces) the job that wakes a worker to run the export at run_at. The job is only a
-- wake-up call; the guarded claim (UPDATE ... WHERE status = 'queued') decides who runs it.
CREATE FUNCTION enqueue_analytics_export(export_id uuid, run_at timestamptz) RETURNS void
LANGUAGE sql VOLATILE AS $$
  SELECT FROM graphile_worker.add_job(
    'analytics_export',
    json_build_object('export_id', enqueue_analytics_export.export_id),
    run_at := enqueue_analytics_export.run_at,
    max_attempts := 3::smallint,
    job_key := analytics_export_job_key(enqueue_analytics_export.export_id),
    job_key_mode := 'replace'
  )
$$;
--> statement-breakpoint

CREATE OR REPLACE FUNCTION analytics_exports_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM enqueue_analytics_export(NEW.id, NEW.run_at);
  RETURN NULL;
END
$$;
--> statement-breakpoint

CREATE OR REPLACE FUNCTION requeue_orphaned_exports(stale_after interval) RETURNS SETOF uuid
LANGUAGE sql VOLATILE AS $$
  WITH orphans AS MATERIALIZED (
    SELECT e.id
      FROM analytics_exports e
     WHERE e.status = 'queued'
       AND e.run_at < now() - stale_after
       AND NOT EXISTS (
             SELECT 1 FROM graphile_worker.jobs j
              WHERE j.key = analytics_export_job_key(e.id)
                AND j.attempts < j.max_attempts
                AND (j.locked_at IS NULL OR j.locked_at > now() - stale_after))
       FOR UPDATE OF e SKIP LOCKED
  )
  SELECT o.id
    FROM orphans o
   CROSS JOIN LATERAL enqueue_analytics_export(o.id, now()) AS added
$$;
