-- Webhooks when an export finishes, and the NOTIFY that wakes requests waiting for it
-- (docs/api.md, docs/operations.md).

-- Where to POST when the export becomes complete or failed; null: nowhere. The API checks the URL
-- (https, public address); the database only bounds its length.
ALTER TABLE analytics_exports ADD COLUMN notify_url text
  CONSTRAINT analytics_exports_notify_url_length CHECK (char_length(notify_url) BETWEEN 1 AND 2048);
--> statement-breakpoint

-- A user's webhook signing secret, encrypted by the service (AES-256-GCM) with a key the
-- database never sees: a dump alone does not reveal it. One per user; rotating replaces it.
CREATE TABLE webhook_secrets (
  user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  -- base64 of the 12-byte IV, the 16-byte tag and the ciphertext, in that order.
  encrypted_secret text NOT NULL,
  created timestamptz(6) NOT NULL DEFAULT now(),
  modified timestamptz(6) NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE TRIGGER webhook_secrets_modified BEFORE UPDATE ON webhook_secrets FOR EACH ROW EXECUTE FUNCTION set_modified();
--> statement-breakpoint

-- One row per notification: its id is the webhook-id header, the same on every attempt.
-- Deleting the export deletes its notification (there is nothing left to describe).
CREATE TABLE analytics_export_webhooks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  export_id uuid NOT NULL REFERENCES analytics_exports (id) ON DELETE CASCADE,
  event_type text NOT NULL CHECK (event_type IN ('analytics_export.completed', 'analytics_export.failed')),
  url text NOT NULL,
  created timestamptz(6) NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_attempt_at timestamptz(6),
  last_status_code integer,
  last_error text,
  next_attempt_at timestamptz(6),
  delivered_at timestamptz(6),
  gave_up_at timestamptz(6),
  CONSTRAINT analytics_export_webhooks_one_outcome CHECK (delivered_at IS NULL OR gave_up_at IS NULL)
);
--> statement-breakpoint
CREATE INDEX analytics_export_webhooks_export_id_idx ON analytics_export_webhooks (export_id);
--> statement-breakpoint
CREATE INDEX analytics_export_webhooks_pending_idx ON analytics_export_webhooks (created)
  WHERE delivered_at IS NULL AND gave_up_at IS NULL;
--> statement-breakpoint

-- The outbox: when an export reaches its final state, in the same transaction, requests waiting
-- for it are woken (NOTIFY, sent at commit) and, if it has a notify_url, its notification and the
-- graphile-worker job that delivers it are added. No final state without its notification, no
-- notification without its final state. complete and failed are final, so this fires once.
CREATE FUNCTION analytics_exports_finished() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  webhook uuid;
BEGIN
  PERFORM pg_notify('analytics_export_finished', NEW.id::text);
  IF NEW.notify_url IS NOT NULL THEN
    INSERT INTO analytics_export_webhooks (export_id, event_type, url, next_attempt_at)
    VALUES (NEW.id,
            CASE NEW.status WHEN 'complete' THEN 'analytics_export.completed' ELSE 'analytics_export.failed' END,
            NEW.notify_url,
            now())
    RETURNING id INTO webhook;
    PERFORM enqueue_export_webhook(webhook, now());
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint

-- Adds the job that makes the next delivery attempt at run_at. graphile-worker's own retries
-- (max_attempts) only cover the task failing to run (the database away); the delivery's
-- retries are scheduled by the task, each a new job.
CREATE FUNCTION enqueue_export_webhook(webhook_id uuid, run_at timestamptz) RETURNS void
LANGUAGE sql VOLATILE AS $$
  SELECT FROM graphile_worker.add_job(
    'deliver_export_webhook',
    json_build_object('webhook_id', enqueue_export_webhook.webhook_id),
    run_at := enqueue_export_webhook.run_at,
    max_attempts := 10::smallint
  )
$$;
--> statement-breakpoint
CREATE TRIGGER analytics_exports_finished
  AFTER UPDATE OF status ON analytics_exports
  FOR EACH ROW WHEN (NEW.status IN ('complete', 'failed') AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION analytics_exports_finished();
--> statement-breakpoint

-- For operators: every notification, newest first, with how its delivery went.
CREATE VIEW analytics_export_webhook_deliveries AS
SELECT w.id AS webhook_id,
       w.export_id,
       w.event_type,
       w.url,
       w.attempts,
       w.last_status_code,
       w.last_error,
       w.delivered_at,
       w.gave_up_at,
       CASE WHEN w.delivered_at IS NOT NULL THEN 'delivered'
            WHEN w.gave_up_at IS NOT NULL THEN 'gave_up'
            ELSE 'pending' END AS state,
       w.next_attempt_at,
       w.last_attempt_at,
       w.created
  FROM analytics_export_webhooks w
 ORDER BY w.created DESC, w.id DESC;
