-- Rescue of exports whose worker died (SIGKILL, lost host, partitioned network): a running export
-- whose heartbeat is older than `stale_after` is nobody's any more. It goes back to queued (the
-- enqueue trigger adds its job, run at once by any worker), or to failed when it has used all its
-- attempts (`worker_lost`) or when someone asked to cancel it (`cancelled`). Returns the ids it
-- moved. Every worker process calls it periodically; concurrent calls are safe, as each row is
-- re-checked under its lock and moved once.
CREATE FUNCTION rescue_stale_exports(stale_after interval) RETURNS SETOF uuid
LANGUAGE sql VOLATILE AS $$
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
     AND heartbeat_at < now() - stale_after
  RETURNING id
$$;
