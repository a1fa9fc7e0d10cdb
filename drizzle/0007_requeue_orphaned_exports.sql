-- A queued export must always have a job that will run it. The enqueue trigger adds one, but a
-- job can still be lost to the export: graphile-worker gives up on a job after its max_attempts
-- when the task itself keeps failing (the database unreachable at the claim, say), and a job
-- taken by a worker that died before it claimed the export stays locked for four hours. Such an
-- export would wait forever while saying "queued". This finds the queued exports, due for longer
-- than `stale_after`, that have no job able to run them, gives each a fresh job, and returns their
-- ids. Every worker's rescuer calls it beside rescue_stale_exports().
CREATE FUNCTION requeue_orphaned_exports(stale_after interval) RETURNS SETOF uuid
LANGUAGE sql VOLATILE AS $$
  WITH orphans AS MATERIALIZED (
    SELECT e.id
      FROM analytics_exports e
     WHERE e.status = 'queued'
       AND e.run_at < now() - stale_after
       AND NOT EXISTS (
             SELECT 1 FROM graphile_worker.jobs j
              WHERE j.key = 'analytics_export:' || e.id
                AND j.attempts < j.max_attempts
                AND (j.locked_at IS NULL OR j.locked_at > now() - stale_after))
       FOR UPDATE OF e SKIP LOCKED
  )
  SELECT o.id
    FROM orphans o
   CROSS JOIN LATERAL graphile_worker.add_job(
           'analytics_export',
           json_build_object('export_id', o.id),
           run_at := now(),
           max_attempts := 3::smallint,
           job_key := 'analytics_export:' || o.id,
           job_key_mode := 'replace') AS added
$$;
