-- What an export's file is: its format (csv, jsonl, parquet), the compression around it (none,
-- gzip, zstd; Parquet takes it as its column codec) and, for csv only, whether cells a
-- spreadsheet would run as a formula are written with a leading quote. Chosen when the export is
-- created; existing exports are what they always were: csv, uncompressed, unguarded.
CREATE TYPE export_format AS ENUM ('csv', 'jsonl', 'parquet');
--> statement-breakpoint
CREATE TYPE export_compression AS ENUM ('none', 'gzip', 'zstd');
--> statement-breakpoint
ALTER TABLE analytics_exports
  ADD COLUMN format export_format NOT NULL DEFAULT 'csv',
  ADD COLUMN compression export_compression NOT NULL DEFAULT 'none',
  ADD COLUMN formula_guard boolean NOT NULL DEFAULT false,
  ADD CONSTRAINT analytics_exports_formula_guard_csv CHECK (NOT formula_guard OR format = 'csv');
--> statement-breakpoint

-- retry_export (0009), unchanged but for one thing: the retry writes the same kind of file.
CREATE OR REPLACE FUNCTION retry_export(export_id uuid) RETURNS uuid LANGUAGE plpgsql AS $$
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
    (created_by, name, notes, query_id, query_definition, tags, customer_scopes, partner_scopes, max_attempts, retry_of,
     format, compression, formula_guard)
  VALUES
    (original.created_by, original.name, original.notes, original.query_id, original.query_definition, original.tags,
     original.customer_scopes, original.partner_scopes, original.max_attempts, original.id,
     original.format, original.compression, original.formula_guard)
  RETURNING id INTO new_id;
  RETURN new_id;
END
$$;
