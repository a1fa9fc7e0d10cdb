CREATE TYPE "public"."account_type" AS ENUM('admin', 'partner', 'customer');--> statement-breakpoint
CREATE TYPE "public"."export_status" AS ENUM('queued', 'running', 'complete', 'failed');--> statement-breakpoint
CREATE TYPE "public"."query_aggregation" AS ENUM('avg', 'min', 'max', 'sum', 'count');--> statement-breakpoint
CREATE TYPE "public"."query_interval" AS ENUM('raw', '1m', '5m', '15m', '1h', '1d');--> statement-breakpoint
CREATE TABLE "analytics_exports" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"status" "export_status" DEFAULT 'queued' NOT NULL,
	"created" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"modified" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"created_by" uuid NOT NULL,
	"name" varchar(100) NOT NULL,
	"notes" text DEFAULT '' NOT NULL,
	"query_id" uuid NOT NULL,
	"errors" jsonb,
	"number_of_rows" bigint,
	"total_bytes" bigint,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"customer_scopes" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"partner_scopes" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"object_key" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 5 NOT NULL,
	"last_error" jsonb,
	"worker_id" text,
	"heartbeat_at" timestamp (6) with time zone,
	"rows_written" bigint,
	"bytes_written" bigint,
	"run_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"cancel_requested_at" timestamp (6) with time zone,
	"started" timestamp (6) with time zone,
	"finished" timestamp (6) with time zone,
	"idempotency_key" varchar(255),
	"request_hash" text
);
--> statement-breakpoint
CREATE TABLE "analytics_queries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"created" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"modified" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"created_by" uuid NOT NULL,
	"name" varchar(100) NOT NULL,
	"notes" text DEFAULT '' NOT NULL,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"customer_scopes" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"partner_scopes" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"metrics" text[] NOT NULL,
	"devices" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"spaces" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"start" timestamp with time zone NOT NULL,
	"end" timestamp with time zone NOT NULL,
	"interval" "query_interval" DEFAULT 'raw' NOT NULL,
	"aggregation" "query_aggregation",
	"timezone" text DEFAULT 'UTC' NOT NULL,
	CONSTRAINT "analytics_queries_name_length" CHECK (char_length("analytics_queries"."name") BETWEEN 1 AND 100),
	CONSTRAINT "analytics_queries_metrics_count" CHECK (cardinality("analytics_queries"."metrics") BETWEEN 1 AND 20),
	CONSTRAINT "analytics_queries_time_range" CHECK ("analytics_queries"."end" > "analytics_queries"."start"),
	CONSTRAINT "analytics_queries_aggregation" CHECK (("analytics_queries"."interval" = 'raw') = ("analytics_queries"."aggregation" IS NULL))
);
--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"prefix" varchar(16) NOT NULL,
	"key_hash" text NOT NULL,
	"name" varchar(100) DEFAULT '' NOT NULL,
	"created" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"last_used" timestamp with time zone,
	"revoked" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "customers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"partner_id" uuid NOT NULL,
	"name" varchar(200) NOT NULL,
	"created" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"modified" timestamp (6) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "device_readings" (
	"device_id" uuid NOT NULL,
	"metric" varchar(64) NOT NULL,
	"ts" timestamp with time zone NOT NULL,
	"value" double precision NOT NULL,
	CONSTRAINT "device_readings_pkey" PRIMARY KEY("device_id","metric","ts")
);
--> statement-breakpoint
CREATE TABLE "devices" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"customer_id" uuid NOT NULL,
	"space_id" uuid,
	"name" varchar(200) NOT NULL,
	"kind" varchar(50) DEFAULT 'sensor' NOT NULL,
	"created" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"modified" timestamp (6) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "metrics" (
	"name" varchar(64) PRIMARY KEY NOT NULL,
	"unit" varchar(16) DEFAULT '' NOT NULL,
	"description" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
CREATE TABLE "partners" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" varchar(200) NOT NULL,
	"created" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"modified" timestamp (6) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "spaces" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"customer_id" uuid NOT NULL,
	"parent_id" uuid,
	"name" varchar(200) NOT NULL,
	"created" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"modified" timestamp (6) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"email" varchar(254) NOT NULL,
	"account_type" "account_type" NOT NULL,
	"partner_id" uuid,
	"customer_id" uuid,
	"created" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"modified" timestamp (6) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_account_type_membership" CHECK (("users"."account_type" = 'admin' AND "users"."partner_id" IS NULL AND "users"."customer_id" IS NULL)
       OR ("users"."account_type" = 'partner' AND "users"."partner_id" IS NOT NULL AND "users"."customer_id" IS NULL)
       OR ("users"."account_type" = 'customer' AND "users"."customer_id" IS NOT NULL AND "users"."partner_id" IS NULL))
);
--> statement-breakpoint
ALTER TABLE "analytics_exports" ADD CONSTRAINT "analytics_exports_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "analytics_exports" ADD CONSTRAINT "analytics_exports_query_id_analytics_queries_id_fk" FOREIGN KEY ("query_id") REFERENCES "public"."analytics_queries"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "analytics_queries" ADD CONSTRAINT "analytics_queries_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "customers" ADD CONSTRAINT "customers_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "device_readings" ADD CONSTRAINT "device_readings_device_id_devices_id_fk" FOREIGN KEY ("device_id") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "device_readings" ADD CONSTRAINT "device_readings_metric_metrics_name_fk" FOREIGN KEY ("metric") REFERENCES "public"."metrics"("name") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "devices" ADD CONSTRAINT "devices_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "devices" ADD CONSTRAINT "devices_space_id_spaces_id_fk" FOREIGN KEY ("space_id") REFERENCES "public"."spaces"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "spaces" ADD CONSTRAINT "spaces_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "spaces" ADD CONSTRAINT "spaces_parent_id_spaces_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."spaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_partner_id_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."partners"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."customers"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "analytics_exports_created_idx" ON "analytics_exports" USING btree ("created" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "analytics_exports_query_id_idx" ON "analytics_exports" USING btree ("query_id");--> statement-breakpoint
CREATE INDEX "analytics_exports_created_by_idx" ON "analytics_exports" USING btree ("created_by");--> statement-breakpoint
CREATE INDEX "analytics_exports_running_heartbeat_idx" ON "analytics_exports" USING btree ("heartbeat_at") WHERE "analytics_exports"."status" = 'running';--> statement-breakpoint
CREATE UNIQUE INDEX "analytics_exports_idempotency_key" ON "analytics_exports" USING btree ("created_by","idempotency_key") WHERE "analytics_exports"."idempotency_key" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "analytics_queries_created_by_idx" ON "analytics_queries" USING btree ("created_by");--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE INDEX "api_keys_user_id_idx" ON "api_keys" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "customers_partner_id_idx" ON "customers" USING btree ("partner_id");--> statement-breakpoint
CREATE INDEX "devices_customer_id_idx" ON "devices" USING btree ("customer_id");--> statement-breakpoint
CREATE INDEX "devices_space_id_idx" ON "devices" USING btree ("space_id");--> statement-breakpoint
CREATE INDEX "spaces_customer_id_idx" ON "spaces" USING btree ("customer_id");--> statement-breakpoint
CREATE INDEX "spaces_parent_id_idx" ON "spaces" USING btree ("parent_id");--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_key" ON "users" USING btree (lower("email"));