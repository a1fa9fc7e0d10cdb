import path from 'node:path';
import * as v from 'valibot';

/**
 * The service's whole configuration, read from the environment once at start-up.
 * Every variable is documented in the README's configuration table; an invalid value stops the
 * process before anything starts, with the variable named.
 */

const integer = (name: string, min: number, max: number) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^\d+$/, `${name} must be a whole number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `${name} must be a whole number from ${min} to ${max}`),
    v.maxValue(max, `${name} must be a whole number from ${min} to ${max}`),
  );

const boolean = (name: string) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.toLowerCase(),
    v.picklist(['1', '0', 'true', 'false', 'yes', 'no'], `${name} must be one of 1, 0, true, false, yes, no`),
    v.transform((s) => s === '1' || s === 'true' || s === 'yes'),
  );

const nonEmpty = (name: string) => v.pipe(v.string(), v.trim(), v.nonEmpty(`${name} must not be empty`));

const url = (name: string, protocols: string[]) =>
  v.pipe(
    nonEmpty(name),
    v.check(
      (s) => {
        try {
          return protocols.includes(new URL(s).protocol);
        } catch {
          return false;
        }
      },
      `${name} must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
    ),
  );

export const ROLES = ['all', 'api', 'worker'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;

/** Variable name -> schema. Exported so that deployment files can be checked against it. */
export const environmentSchema = {
  DATA_DIR: v.optional(nonEmpty('DATA_DIR'), '.data'),
  DATABASE_URL: v.optional(url('DATABASE_URL', ['postgres:', 'postgresql:'])),
  DATABASE_POOL_SIZE: v.optional(integer('DATABASE_POOL_SIZE', 1, 200), '10'),
  S3_ENDPOINT: v.optional(url('S3_ENDPOINT', ['http:', 'https:'])),
  S3_PUBLIC_ENDPOINT: v.optional(url('S3_PUBLIC_ENDPOINT', ['http:', 'https:'])),
  S3_BUCKET: v.optional(
    v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'S3_BUCKET must be a valid bucket name (3-63 of a-z, 0-9, . and -)')),
  ),
  S3_REGION: v.optional(nonEmpty('S3_REGION'), 'us-east-1'),
  S3_ACCESS_KEY_ID: v.optional(nonEmpty('S3_ACCESS_KEY_ID')),
  S3_SECRET_ACCESS_KEY: v.optional(nonEmpty('S3_SECRET_ACCESS_KEY')),
  S3_FORCE_PATH_STYLE: v.optional(boolean('S3_FORCE_PATH_STYLE')),
  // Tries of each S3 request the worker makes, 1 s apart then doubling up to 20 s: 9 ride out about 91 s.
  S3_MAX_ATTEMPTS: v.optional(integer('S3_MAX_ATTEMPTS', 1, 20), '9'),
  PORT: v.optional(integer('PORT', 0, 65535), '3000'),
  HOST: v.optional(nonEmpty('HOST'), '127.0.0.1'),
  ROLE: v.optional(v.picklist(ROLES, `ROLE must be one of ${ROLES.join(', ')}`), 'all'),
  WORKER_CONCURRENCY: v.optional(integer('WORKER_CONCURRENCY', 1, 64), '4'),
  DEMO: v.optional(boolean('DEMO')),
  LOG_LEVEL: v.optional(v.picklist(LOG_LEVELS, `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`), 'info'),
  // Unset: pretty when stdout is a terminal, JSON otherwise (src/logger.ts).
  LOG_FORMAT: v.optional(v.picklist(LOG_FORMATS, `LOG_FORMAT must be one of ${LOG_FORMATS.join(', ')}`)),
  // Behind a reverse proxy: the URLs the API builds take their scheme and host from X-Forwarded-Proto and -Host.
  TRUST_PROXY: v.optional(boolean('TRUST_PROXY')),
  EXPORT_MAX_ATTEMPTS: v.optional(integer('EXPORT_MAX_ATTEMPTS', 1, 25), '5'),
  EXPORT_STATEMENT_TIMEOUT_S: v.optional(integer('EXPORT_STATEMENT_TIMEOUT_S', 1, 86_400), '3600'),
  // A running export whose heartbeat is older than this is rescued (re-queued or failed) by any worker.
  EXPORT_HEARTBEAT_TIMEOUT_S: v.optional(integer('EXPORT_HEARTBEAT_TIMEOUT_S', 2, 86_400), '30'),
  // First delay before retrying an export after a storage fault; doubled on each attempt, at most 1 hour.
  EXPORT_RETRY_DELAY_S: v.optional(integer('EXPORT_RETRY_DELAY_S', 0, 3600), '10'),
  EXPORT_PART_SIZE_MIB: v.optional(integer('EXPORT_PART_SIZE_MIB', 5, 512), '5'),
  // An export larger than this is written as several files, each a complete file of its own.
  EXPORT_MAX_FILE_MIB: v.optional(integer('EXPORT_MAX_FILE_MIB', 5, 5_242_880), '1024'),
  // An export whose planner estimate passes this many rows is divided into time slices of about as many rows; 0: never.
  EXPORT_SLICE_ROWS: v.optional(integer('EXPORT_SLICE_ROWS', 0, 1_000_000_000_000), '2000000'),
  EXPORT_UPLOAD_QUEUE_SIZE: v.optional(integer('EXPORT_UPLOAD_QUEUE_SIZE', 1, 16), '2'),
  // work_mem of the COPY sessions (unset: the server's): the export's sort stays in memory up to it.
  EXPORT_WORK_MEM_MIB: v.optional(integer('EXPORT_WORK_MEM_MIB', 4, 4096)),
  EXPORT_RETENTION_DAYS: v.optional(integer('EXPORT_RETENTION_DAYS', 1, 3650), '30'),
  // Exports one tenant runs at once while another tenant's export waits; 0: no limit.
  EXPORT_MAX_RUNNING_PER_CUSTOMER: v.optional(integer('EXPORT_MAX_RUNNING_PER_CUSTOMER', 0, 1000), '2'),
  // Unset: exports read from DATABASE_URL. Set (typically a streaming standby): their COPYs run there.
  EXPORT_DATABASE_URL: v.optional(url('EXPORT_DATABASE_URL', ['postgres:', 'postgresql:'])),
  // How long an export waits for EXPORT_DATABASE_URL to replay what the primary had at its claim.
  EXPORT_REPLICA_MAX_LAG_S: v.optional(integer('EXPORT_REPLICA_MAX_LAG_S', 1, 3600), '30'),
  SHUTDOWN_GRACE_S: v.optional(integer('SHUTDOWN_GRACE_S', 0, 3600), '25'),
  // notify_url may name loopback, private and other non-public addresses (and use http). Unset:
  // allowed only with the embedded database (a zero-configuration run on a workstation).
  WEBHOOK_ALLOW_PRIVATE: v.optional(boolean('WEBHOOK_ALLOW_PRIVATE')),
  // The AES-256 key that encrypts webhook signing secrets in the database: 32 bytes in base64.
  // Unset: a key file under DATA_DIR, made on first use.
  WEBHOOK_SECRET_KEY: v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.check((s) => /^[A-Za-z0-9+/]{43}=$/.test(s), 'WEBHOOK_SECRET_KEY must be 32 bytes in base64 (44 characters)'),
    ),
  ),
  // First delay before retrying a webhook delivery; doubled on each attempt, at most 2 hours.
  WEBHOOK_RETRY_DELAY_S: v.optional(integer('WEBHOOK_RETRY_DELAY_S', 0, 3600), '10'),
} as const;

const EnvironmentSchema = v.object(environmentSchema);

/** The variables a tool working on the database alone reads (the CLI): a subset of the service's. */
const DatabaseEnvironmentSchema = v.object({ DATA_DIR: environmentSchema.DATA_DIR, DATABASE_URL: environmentSchema.DATABASE_URL });

/** What the CLI needs to encrypt a webhook signing secret as the service does. */
const WebhookKeyEnvironmentSchema = v.object({
  DATA_DIR: environmentSchema.DATA_DIR,
  WEBHOOK_SECRET_KEY: environmentSchema.WEBHOOK_SECRET_KEY,
});

export interface S3Config {
  /** Unset: the embedded S3 server is started under DATA_DIR/s3. */
  endpoint: string | undefined;
  /**
   * The endpoint that download links are signed for, when clients reach S3 by another address
   * than the service does (compose: the service talks to http://minio:9000, a browser to
   * http://localhost:9000). Unset: the links use `endpoint`.
   */
  publicEndpoint?: string | undefined;
  bucket: string;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
  /** Tries of each S3 request of the worker (S3_MAX_ATTEMPTS; the API's requests get the SDK's default 3). */
  maxAttempts?: number;
}

export interface Config {
  dataDir: string;
  /** Unset: the embedded Postgres is started under DATA_DIR/postgres. */
  databaseUrl: string | undefined;
  databasePoolSize: number;
  s3: S3Config;
  /** True when neither S3_ENDPOINT nor S3_BUCKET is set. */
  embeddedS3: boolean;
  port: number;
  host: string;
  role: (typeof ROLES)[number];
  workerConcurrency: number;
  /** Seed demo data on first start: always with the embedded database, with DATABASE_URL only when DEMO=1. */
  demo: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  /** Unset: pretty on a terminal, JSON otherwise. */
  logFormat: (typeof LOG_FORMATS)[number] | undefined;
  /** Build absolute URLs (Link headers) from X-Forwarded-Proto and X-Forwarded-Host (TRUST_PROXY). */
  trustProxy: boolean;
  export: {
    maxAttempts: number;
    statementTimeoutMs: number;
    heartbeatTimeoutMs: number;
    retryDelayMs: number;
    partSizeBytes: number;
    /** A file ends at the first row boundary once it holds this many bytes; the next row starts a new file. */
    maxFileBytes: number;
    /** Planner rows per slice: an export estimated at more is divided into time slices (0: never). */
    sliceRows: number;
    uploadQueueSize: number;
    /** work_mem of each COPY session, in MiB; undefined: the server's. */
    workMemMiB: number | undefined;
    retentionDays: number;
    /** EXPORT_MAX_RUNNING_PER_CUSTOMER: 0 is no limit. */
    maxRunningPerCustomer: number;
    /** EXPORT_DATABASE_URL: where the COPYs read; unset, the service's own database. */
    readDatabaseUrl: string | undefined;
    /** EXPORT_REPLICA_MAX_LAG_S in ms: the longest an export waits for the read database to catch up. */
    replicaMaxLagMs: number;
  };
  shutdownGraceMs: number;
  webhooks: WebhookConfig;
}

export interface WebhookConfig {
  /** notify_url may name non-public addresses and use http (WEBHOOK_ALLOW_PRIVATE). */
  allowPrivate: boolean;
  /** Encrypts the signing secrets: WEBHOOK_SECRET_KEY, or undefined for the key file under DATA_DIR. */
  secretKey: Buffer | undefined;
  retryDelayMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the schema's variables from the environment; throws ConfigError naming every bad one. */
function parseEnvironment<TEntries extends v.ObjectEntries>(
  schema: v.ObjectSchema<TEntries, undefined>,
  env: NodeJS.ProcessEnv,
): v.InferOutput<v.ObjectSchema<TEntries, undefined>> {
  const raw: Record<string, string> = {};
  for (const name of Object.keys(schema.entries)) {
    const value = env[name];
    // An empty variable counts as unset, as shells and compose files often leave them.
    if (value !== undefined && value !== '') raw[name] = value;
  }
  const result = v.safeParse(schema, raw);
  if (!result.success) {
    throw new ConfigError(
      result.issues.map((issue) => {
        const name = v.getDotPath(issue) ?? 'environment';
        return issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`;
      }),
    );
  }
  return result.output;
}

/** The database's configuration alone: the part of Config that the CLI needs. */
export type DatabaseConfig = Pick<Config, 'dataDir' | 'databaseUrl'>;

/**
 * DATA_DIR and DATABASE_URL only, parsed as loadConfig parses them: for the CLI, which works on
 * the database and must not fail on a variable that only the service reads.
 */
export function loadDatabaseConfig(env: NodeJS.ProcessEnv = process.env): DatabaseConfig {
  const e = parseEnvironment(DatabaseEnvironmentSchema, env);
  return { dataDir: path.resolve(e.DATA_DIR), databaseUrl: e.DATABASE_URL };
}

/** Where the webhook secrets' key comes from, parsed as loadConfig parses it: for the CLI. */
export function loadWebhookKeyConfig(env: NodeJS.ProcessEnv = process.env): { dataDir: string; secretKey: Buffer | undefined } {
  const e = parseEnvironment(WebhookKeyEnvironmentSchema, env);
  return { dataDir: path.resolve(e.DATA_DIR), secretKey: secretKeyOf(e.WEBHOOK_SECRET_KEY) };
}

/** Parses the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = parseEnvironment(EnvironmentSchema, env);
  const embeddedS3 = e.S3_ENDPOINT === undefined && e.S3_BUCKET === undefined;
  const problems: string[] = [];
  if (!embeddedS3 && e.S3_BUCKET === undefined) problems.push('S3_BUCKET must be set when S3_ENDPOINT is set');
  if ((e.S3_ACCESS_KEY_ID === undefined) !== (e.S3_SECRET_ACCESS_KEY === undefined)) {
    problems.push('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together');
  }
  // A file may pass the limit by less than one part, and S3 takes at most 10,000 parts in one upload.
  if (e.EXPORT_MAX_FILE_MIB > e.EXPORT_PART_SIZE_MIB * 9_999) {
    problems.push(`EXPORT_MAX_FILE_MIB must be at most ${e.EXPORT_PART_SIZE_MIB * 9_999} (EXPORT_PART_SIZE_MIB x 9,999 parts)`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    dataDir: path.resolve(e.DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    s3: {
      endpoint: e.S3_ENDPOINT,
      publicEndpoint: e.S3_PUBLIC_ENDPOINT,
      bucket: e.S3_BUCKET ?? 'analytics-exports',
      region: e.S3_REGION,
      accessKeyId: e.S3_ACCESS_KEY_ID,
      secretAccessKey: e.S3_SECRET_ACCESS_KEY,
      // S3-compatible servers (MinIO, s3rver) want path-style addressing; AWS itself does not.
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? (embeddedS3 || e.S3_ENDPOINT !== undefined),
      maxAttempts: e.S3_MAX_ATTEMPTS,
    },
    embeddedS3,
    port: e.PORT,
    host: e.HOST,
    role: e.ROLE,
    workerConcurrency: e.WORKER_CONCURRENCY,
    demo: e.DATABASE_URL === undefined ? e.DEMO !== false : e.DEMO === true,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    trustProxy: e.TRUST_PROXY ?? false,
    export: {
      maxAttempts: e.EXPORT_MAX_ATTEMPTS,
      statementTimeoutMs: e.EXPORT_STATEMENT_TIMEOUT_S * 1000,
      heartbeatTimeoutMs: e.EXPORT_HEARTBEAT_TIMEOUT_S * 1000,
      retryDelayMs: e.EXPORT_RETRY_DELAY_S * 1000,
      partSizeBytes: e.EXPORT_PART_SIZE_MIB * 1024 * 1024,
      maxFileBytes: e.EXPORT_MAX_FILE_MIB * 1024 * 1024,
      sliceRows: e.EXPORT_SLICE_ROWS,
      uploadQueueSize: e.EXPORT_UPLOAD_QUEUE_SIZE,
      workMemMiB: e.EXPORT_WORK_MEM_MIB,
      retentionDays: e.EXPORT_RETENTION_DAYS,
      maxRunningPerCustomer: e.EXPORT_MAX_RUNNING_PER_CUSTOMER,
      readDatabaseUrl: e.EXPORT_DATABASE_URL,
      replicaMaxLagMs: e.EXPORT_REPLICA_MAX_LAG_S * 1000,
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_S * 1000,
    webhooks: {
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE ?? e.DATABASE_URL === undefined,
      secretKey: secretKeyOf(e.WEBHOOK_SECRET_KEY),
      retryDelayMs: e.WEBHOOK_RETRY_DELAY_S * 1000,
    },
  };
}

const secretKeyOf = (base64: string | undefined) => (base64 === undefined ? undefined : Buffer.from(base64, 'base64'));
