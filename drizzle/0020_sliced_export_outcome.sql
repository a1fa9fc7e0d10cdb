-- A sliced export ends in the database (settle_sliced_export, complete_sliced_export, 0014), not in
-- one worker's attempt; these say which process ended it, so that it counts once in the
-- export-level metrics, as an unsliced export's attempt does.

-- A failed sliced export's end, as an unsliced attempt's is counted: its errors, the time from the
-- claim that sliced it to its end, the time from its due date to that claim, and what its slices
-- wrote (sliced_export_progress, 0018).
CREATE FUNCTION failed_sliced_export_end(sliced_export_id uuid, OUT errors jsonb, OUT duration_s float8, OUT queued_s float8,
                                         OUT rows_written bigint, OUT bytes_written bigint)
LANGUAGE sql STABLE AS $$
  SELECT e.errors, extract(epoch FROM e.finished - e.started)::float8, extract(epoch FROM e.started - e.run_at)::float8,
         p.rows_written, p.bytes_written
    FROM analytics_exports e CROSS JOIN LATERAL sliced_export_progress(e.id) AS p
   WHERE e.id = sliced_export_id AND e.status = 'failed'
$$;
--> statement-breakpoint

-- The end of a slice attempt as its worker writes it (guarded by the attempt holding the slice:
-- export, slice number, worker_id, attempts), complete with its files and their sums, or failed
-- with its errors. The slice's settle (settle_sliced_export, run by the trigger on its status
-- under the export's row lock, which this transaction then holds) fails a cancelled export, or
-- one with a slice failed for good, once no slice runs: so the slice that ends last fails it,
-- whether that slice failed, was cancelled or even completed. While this slice ran the export
-- could not fail, so an export running before the update and failed after it was failed by this
-- slice's end: then export_errors and the rest are its end (failed_sliced_export_end), else null.
-- ended is false when this attempt no longer holds the slice.
CREATE FUNCTION complete_analytics_export_slice(sliced_export_id uuid, slice integer, holder text, attempt integer, slice_files jsonb,
                                                OUT ended boolean, OUT export_errors jsonb, OUT export_duration_s float8,
                                                OUT export_queued_s float8, OUT export_rows bigint, OUT export_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
  export_was_running boolean;
BEGIN
  UPDATE analytics_export_slices AS s
     SET status = 'complete', files = slice_files, rows_written = sums.rows, bytes_written = sums.bytes,
         number_of_rows = sums.rows, total_bytes = sums.bytes
    FROM (SELECT sum((f ->> 'rows')::bigint) AS rows, sum((f ->> 'bytes')::bigint) AS bytes
            FROM jsonb_array_elements(slice_files) AS f) AS sums,
         analytics_exports AS e
   WHERE s.export_id = sliced_export_id AND s.slice_number = slice AND s.status = 'running' AND s.worker_id = holder
     AND s.attempts = attempt AND e.id = s.export_id
  RETURNING e.status = 'running' INTO export_was_running;
  ended := FOUND;
  IF export_was_running THEN
    SELECT * INTO export_errors, export_duration_s, export_queued_s, export_rows, export_bytes
      FROM failed_sliced_export_end(sliced_export_id);
  END IF;
END
$$;
--> statement-breakpoint
CREATE FUNCTION fail_analytics_export_slice(sliced_export_id uuid, slice integer, holder text, attempt integer, slice_errors jsonb,
                                            OUT ended boolean, OUT export_errors jsonb, OUT export_duration_s float8,
                                            OUT export_queued_s float8, OUT export_rows bigint, OUT export_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
  export_was_running boolean;
BEGIN
  UPDATE analytics_export_slices AS s
     SET status = 'failed', errors = slice_errors
    FROM analytics_exports AS e
   WHERE s.export_id = sliced_export_id AND s.slice_number = slice AND s.status = 'running' AND s.worker_id = holder
     AND s.attempts = attempt AND e.id = s.export_id
  RETURNING e.status = 'running' INTO export_was_running;
  ended := FOUND;
  IF export_was_running THEN
    SELECT * INTO export_errors, export_duration_s, export_queued_s, export_rows, export_bytes
      FROM failed_sliced_export_end(sliced_export_id);
  END IF;
END
$$;
