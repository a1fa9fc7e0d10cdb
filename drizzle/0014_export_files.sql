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
