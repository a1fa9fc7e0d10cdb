import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  varchar,
  type AnyPgColumn,
} from 'drizzle-orm/pg-core';

/**
 * The domain model: Partner -> Customer -> Space (nested) -> Device -> readings,
 * and the analytics queries and exports defined over them. The export state machine's trigger,
 * its CHECK constraints and the SQL functions live in hand-written migrations under drizzle/.
 */

const timestamps = {
  created: timestamp('created', { withTimezone: true, precision: 6 }).notNull().defaultNow(),
  modified: timestamp('modified', { withTimezone: true, precision: 6 }).notNull().defaultNow(),
};

/** Scope columns shared by every scoped object (who sees an object: docs/api.md, "Scopes"). */
const scopes = {
  customerScopes: uuid('customer_scopes').array().notNull().default(sql`'{}'::uuid[]`),
  partnerScopes: uuid('partner_scopes').array().notNull().default(sql`'{}'::uuid[]`),
};

/**
 * The enums, defined once here: the drizzle pgEnum (for drizzle-kit and the columns), its values
 * (the plural constant) and, where code needs it, its TypeScript union. Everything else imports these.
 */
export const accountTypeEnum = pgEnum('account_type', ['admin', 'partner', 'customer']);
export const ACCOUNT_TYPES = accountTypeEnum.enumValues;
export type AccountType = (typeof ACCOUNT_TYPES)[number];

/** The export state machine's states (drizzle/0001_export_state_machine.sql, docs/state-machine.md). */
export const exportStatusEnum = pgEnum('export_status', ['queued', 'running', 'complete', 'failed']);
export const EXPORT_STATUSES = exportStatusEnum.enumValues;
export type ExportStatus = (typeof EXPORT_STATUSES)[number];

/**
 * The codes of an export's `errors` (why it failed) and `last_error` (the last transient fault):
 * `{"code": ..., "message": ..., ...details}`. Written by the worker (src/worker/failure.ts) and
 * by the SQL functions (cancel_export, rescue_stale_exports: `cancelled`, `worker_lost`).
 *   query_error            the query failed or its definition is invalid (final)
 *   timeout                the COPY outran EXPORT_STATEMENT_TIMEOUT_S (final)
 *   too_large              the object would exceed the storage's multipart limits (final)
 *   storage_denied         the storage refused access, 401/403 (final)
 *   storage_misconfigured  the storage refused the request otherwise, e.g. no such bucket (final)
 *   storage_error          the storage failed for now: unreachable, 5xx, throttled (retried)
 *   internal               anything else: the database connection lost, a bug (retried)
 *   cancelled              cancel_export() was called (final)
 *   worker_lost            the worker holding it stopped heartbeating (retried while attempts last)
 *   shutdown               its worker stopped and released it (re-queued)
 */
export const EXPORT_ERROR_CODES = [
  'query_error',
  'timeout',
  'too_large',
  'storage_denied',
  'storage_misconfigured',
  'storage_error',
  'internal',
  'cancelled',
  'worker_lost',
  'shutdown',
  'export_database_unavailable',
  'export_database_behind',
] as const;
export type ExportErrorCode = (typeof EXPORT_ERROR_CODES)[number];

/**
 * What an export's file is: its format and the compression around it (drizzle/0016). Parquet
 * takes the compression as its column codec; csv and jsonl are wrapped whole.
 */
export const exportFormatEnum = pgEnum('export_format', ['csv', 'jsonl', 'parquet']);
export const EXPORT_FORMATS = exportFormatEnum.enumValues;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const exportCompressionEnum = pgEnum('export_compression', ['none', 'gzip', 'zstd']);
export const EXPORT_COMPRESSIONS = exportCompressionEnum.enumValues;
export type ExportCompression = (typeof EXPORT_COMPRESSIONS)[number];

export const queryIntervalEnum = pgEnum('query_interval', ['raw', '1m', '5m', '15m', '1h', '1d']);
export const QUERY_INTERVALS = queryIntervalEnum.enumValues;

export const queryAggregationEnum = pgEnum('query_aggregation', ['avg', 'min', 'max', 'sum', 'count']);
export const QUERY_AGGREGATIONS = queryAggregationEnum.enumValues;

export const partners = pgTable('partners', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: varchar('name', { length: 200 }).notNull(),
  ...timestamps,
});

export const customers = pgTable(
  'customers',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    partnerId: uuid('partner_id')
      .notNull()
      .references(() => partners.id, { onDelete: 'restrict' }),
    name: varchar('name', { length: 200 }).notNull(),
    ...timestamps,
  },
  (t) => [index('customers_partner_id_idx').on(t.partnerId)],
);

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    email: varchar('email', { length: 254 }).notNull(),
    accountType: accountTypeEnum('account_type').notNull(),
    partnerId: uuid('partner_id').references(() => partners.id, { onDelete: 'restrict' }),
    customerId: uuid('customer_id').references(() => customers.id, { onDelete: 'restrict' }),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('users_email_key').on(sql`lower(${t.email})`),
    check(
      'users_account_type_membership',
      sql`(${t.accountType} = 'admin' AND ${t.partnerId} IS NULL AND ${t.customerId} IS NULL)
       OR (${t.accountType} = 'partner' AND ${t.partnerId} IS NOT NULL AND ${t.customerId} IS NULL)
       OR (${t.accountType} = 'customer' AND ${t.customerId} IS NOT NULL AND ${t.partnerId} IS NULL)`,
    ),
  ],
);

/** API keys are shown once; only their SHA-256 is kept (the keys are 256-bit random, so no slow hash is needed). */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** The key's first characters, to tell keys apart in listings without revealing them. */
    prefix: varchar('prefix', { length: 16 }).notNull(),
    keyHash: text('key_hash').notNull(),
    name: varchar('name', { length: 100 }).notNull().default(''),
    created: timestamps.created,
    lastUsed: timestamp('last_used', { withTimezone: true }),
    revoked: timestamp('revoked', { withTimezone: true }),
  },
  (t) => [uniqueIndex('api_keys_key_hash_key').on(t.keyHash), index('api_keys_user_id_idx').on(t.userId)],
);

export const spaces = pgTable(
  'spaces',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    parentId: uuid('parent_id').references((): AnyPgColumn => spaces.id, { onDelete: 'cascade' }),
    name: varchar('name', { length: 200 }).notNull(),
    ...timestamps,
  },
  (t) => [index('spaces_customer_id_idx').on(t.customerId), index('spaces_parent_id_idx').on(t.parentId)],
);

export const devices = pgTable(
  'devices',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    spaceId: uuid('space_id').references(() => spaces.id, { onDelete: 'set null' }),
    name: varchar('name', { length: 200 }).notNull(),
    kind: varchar('kind', { length: 50 }).notNull().default('sensor'),
    ...timestamps,
  },
  (t) => [index('devices_customer_id_idx').on(t.customerId), index('devices_space_id_idx').on(t.spaceId)],
);

export const metrics = pgTable('metrics', {
  name: varchar('name', { length: 64 }).primaryKey(),
  unit: varchar('unit', { length: 16 }).notNull().default(''),
  description: text('description').notNull().default(''),
});

export const deviceReadings = pgTable(
  'device_readings',
  {
    deviceId: uuid('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'cascade' }),
    metric: varchar('metric', { length: 64 })
      .notNull()
      .references(() => metrics.name, { onDelete: 'restrict' }),
    ts: timestamp('ts', { withTimezone: true }).notNull(),
    value: doublePrecision('value').notNull(),
  },
  (t) => [primaryKey({ name: 'device_readings_pkey', columns: [t.deviceId, t.metric, t.ts] })],
);

export const analyticsQueries = pgTable(
  'analytics_queries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    ...timestamps,
    createdBy: uuid('created_by')
      .notNull()
      .references(() => users.id, { onDelete: 'restrict' }),
    name: varchar('name', { length: 100 }).notNull(),
    notes: text('notes').notNull().default(''),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    ...scopes,
    metrics: text('metrics').array().notNull(),
    devices: uuid('devices').array().notNull().default(sql`'{}'::uuid[]`),
    spaces: uuid('spaces').array().notNull().default(sql`'{}'::uuid[]`),
    start: timestamp('start', { withTimezone: true }).notNull(),
    end: timestamp('end', { withTimezone: true }).notNull(),
    interval: queryIntervalEnum('interval').notNull().default('raw'),
    aggregation: queryAggregationEnum('aggregation'),
    timezone: text('timezone').notNull().default('UTC'),
  },
  (t) => [
    index('analytics_queries_created_by_idx').on(t.createdBy),
    check('analytics_queries_name_length', sql`char_length(${t.name}) BETWEEN 1 AND 100`),
    check('analytics_queries_metrics_count', sql`cardinality(${t.metrics}) BETWEEN 1 AND 20`),
    check('analytics_queries_time_range', sql`${t.end} > ${t.start}`),
    check('analytics_queries_aggregation', sql`(${t.interval} = 'raw') = (${t.aggregation} IS NULL)`),
  ],
);

export const analyticsExports = pgTable(
  'analytics_exports',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    // Right after id, for the operator reading SELECT *.
    status: exportStatusEnum('status').notNull().default('queued'),
    ...timestamps,
    createdBy: uuid('created_by')
      .notNull()
      .references(() => users.id, { onDelete: 'restrict' }),
    name: varchar('name', { length: 100 }).notNull(),
    notes: text('notes').notNull().default(''),
    queryId: uuid('query_id')
      .notNull()
      .references(() => analyticsQueries.id, { onDelete: 'restrict' }),
    /** Why the export failed: {"code": ..., "message": ...}. Set exactly when status is failed. */
    errors: jsonb('errors'),
    numberOfRows: bigint('number_of_rows', { mode: 'number' }),
    totalBytes: bigint('total_bytes', { mode: 'number' }),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    ...scopes,
    /** Key of the CSV in the bucket; set when complete. */
    objectKey: text('object_key'),
    /** How many times a worker has claimed it (each claim is one attempt). */
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(5),
    /** The last transient fault (kept while the export waits for its next attempt). */
    lastError: jsonb('last_error'),
    /** Worker holding the export while running, and its liveness. */
    workerId: text('worker_id'),
    heartbeatAt: timestamp('heartbeat_at', { withTimezone: true, precision: 6 }),
    rowsWritten: bigint('rows_written', { mode: 'number' }),
    bytesWritten: bigint('bytes_written', { mode: 'number' }),
    /** When the next attempt may start: now for a new export, later after a transient fault. */
    runAt: timestamp('run_at', { withTimezone: true, precision: 6 }).notNull().defaultNow(),
    cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true, precision: 6 }),
    started: timestamp('started', { withTimezone: true, precision: 6 }),
    finished: timestamp('finished', { withTimezone: true, precision: 6 }),
    /** Idempotency-Key of the creating request and the hash of its body (kept 24 h). */
    idempotencyKey: varchar('idempotency_key', { length: 255 }),
    requestHash: text('request_hash'),
    /** The failed export this one retries (retry_export), kept for lineage; null when it was deleted. */
    retryOf: uuid('retry_of').references((): AnyPgColumn => analyticsExports.id, { onDelete: 'set null' }),
    /**
     * The query's definition as it was when the export was created (metrics, devices, spaces,
     * start, end, interval, aggregation, timezone): what the export runs. Set by the database on
     * INSERT, never changed afterwards.
     */
    queryDefinition: jsonb('query_definition').notNull(),
    /** The file: its format, its compression, and (csv only) whether formula-like cells are guarded. */
    format: exportFormatEnum('format').notNull().default('csv'),
    compression: exportCompressionEnum('compression').notNull().default('none'),
    formulaGuard: boolean('formula_guard').notNull().default(false),
    /** How many time slices the export was divided into (drizzle/0014_export_files.sql); null when it runs whole. */
    slices: integer('slices'),
    /** Where the service POSTs a signed notification when the export becomes complete or failed (drizzle/0017). */
    notifyUrl: text('notify_url'),
  },
  (t) => [
    index('analytics_exports_created_idx').on(t.created.desc(), t.id.desc()),
    index('analytics_exports_query_id_idx').on(t.queryId),
    index('analytics_exports_retry_of_idx').on(t.retryOf).where(sql`${t.retryOf} IS NOT NULL`),
    index('analytics_exports_created_by_idx').on(t.createdBy),
    index('analytics_exports_running_heartbeat_idx').on(t.heartbeatAt).where(sql`${t.status} = 'running'`),
    index('analytics_exports_queued_run_at_idx').on(t.runAt).where(sql`${t.status} = 'queued'`),
    index('analytics_exports_queued_created_by_idx').on(t.createdBy, t.runAt).where(sql`${t.status} = 'queued'`),
    uniqueIndex('analytics_exports_idempotency_key').on(t.createdBy, t.idempotencyKey).where(sql`${t.idempotencyKey} IS NOT NULL`),
    check('analytics_exports_formula_guard_csv', sql`NOT ${t.formulaGuard} OR ${t.format} = 'csv'`),
  ],
);

/**
 * The files of a complete export, in its row order (drizzle/0014_export_files.sql): one file, or
 * several when the export is larger than EXPORT_MAX_FILE_MIB. Saved with the completion, never
 * changed, deleted with the export.
 */
export const analyticsExportFiles = pgTable(
  'analytics_export_files',
  {
    exportId: uuid('export_id')
      .notNull()
      .references(() => analyticsExports.id, { onDelete: 'cascade' }),
    fileNumber: integer('file_number').notNull(),
    objectKey: text('object_key').notNull(),
    numberOfRows: bigint('number_of_rows', { mode: 'number' }).notNull(),
    totalBytes: bigint('total_bytes', { mode: 'number' }).notNull(),
  },
  (t) => [
    primaryKey({ name: 'analytics_export_files_pkey', columns: [t.exportId, t.fileNumber] }),
    index('analytics_export_files_object_key_idx').on(t.objectKey),
    check('analytics_export_files_number_positive', sql`${t.fileNumber} >= 1`),
    check('analytics_export_files_counts_not_negative', sql`${t.numberOfRows} >= 0 AND ${t.totalBytes} >= 0`),
  ],
);

/**
 * The time slices of a sliced export (drizzle/0014_export_files.sql): each runs as a job of its
 * own, with the export's status machine; the export completes when all of them have.
 */
export const analyticsExportSlices = pgTable(
  'analytics_export_slices',
  {
    exportId: uuid('export_id')
      .notNull()
      .references(() => analyticsExports.id, { onDelete: 'cascade' }),
    sliceNumber: integer('slice_number').notNull(),
    rangeStart: timestamp('range_start', { withTimezone: true }).notNull(),
    rangeEnd: timestamp('range_end', { withTimezone: true }).notNull(),
    status: exportStatusEnum('status').notNull().default('queued'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    workerId: text('worker_id'),
    heartbeatAt: timestamp('heartbeat_at', { withTimezone: true, precision: 6 }),
    runAt: timestamp('run_at', { withTimezone: true, precision: 6 }).notNull().defaultNow(),
    started: timestamp('started', { withTimezone: true, precision: 6 }),
    finished: timestamp('finished', { withTimezone: true, precision: 6 }),
    rowsWritten: bigint('rows_written', { mode: 'number' }),
    bytesWritten: bigint('bytes_written', { mode: 'number' }),
    errors: jsonb('errors'),
    lastError: jsonb('last_error'),
    /** The slice's files in order, [{"key", "rows", "bytes"}], when complete. */
    files: jsonb('files'),
    numberOfRows: bigint('number_of_rows', { mode: 'number' }),
    totalBytes: bigint('total_bytes', { mode: 'number' }),
  },
  (t) => [
    primaryKey({ name: 'analytics_export_slices_pkey', columns: [t.exportId, t.sliceNumber] }),
    index('analytics_export_slices_running_heartbeat_idx').on(t.heartbeatAt).where(sql`${t.status} = 'running'`),
    index('analytics_export_slices_queued_run_at_idx').on(t.runAt).where(sql`${t.status} = 'queued'`),
  ],
);

/** A user's webhook signing secret, encrypted with the service's key (src/auth/webhook-secrets.ts). */
export const webhookSecrets = pgTable('webhook_secrets', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  encryptedSecret: text('encrypted_secret').notNull(),
  ...timestamps,
});

/** One notification of an export's final state and how its delivery went (drizzle/0017). */
export const analyticsExportWebhooks = pgTable(
  'analytics_export_webhooks',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    exportId: uuid('export_id')
      .notNull()
      .references(() => analyticsExports.id, { onDelete: 'cascade' }),
    eventType: text('event_type').notNull(),
    url: text('url').notNull(),
    created: timestamps.created,
    attempts: integer('attempts').notNull().default(0),
    lastAttemptAt: timestamp('last_attempt_at', { withTimezone: true, precision: 6 }),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, precision: 6 }),
    deliveredAt: timestamp('delivered_at', { withTimezone: true, precision: 6 }),
    gaveUpAt: timestamp('gave_up_at', { withTimezone: true, precision: 6 }),
  },
  (t) => [index('analytics_export_webhooks_export_id_idx').on(t.exportId)],
);
