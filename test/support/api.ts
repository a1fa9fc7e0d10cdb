import { pino } from 'pino';
import { createApp } from '../../src/api/app';
import { loadConfig } from '../../src/config';
import type { ServiceContext } from '../../src/context';
import type { Logger } from '../../src/logger';
import { createMetrics } from '../../src/observability/metrics';
import { createTestDatabase, type TestDatabase } from './database';
import { createTestBucket, type TestBucket } from './s3';

/**
 * The HTTP API over a test file's own database and bucket, driven in-process through
 * app.request(): real Postgres, real S3 (s3rver), no server socket.
 */

export interface TestApi {
  context: ServiceContext;
  db: TestDatabase;
  bucket: TestBucket;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
}

export interface RequestOptions {
  /** API key sent as `Authorization: Bearer <key>`. */
  key?: string;
  /** Serialised as JSON (with Content-Type application/json) unless it is already a string or bytes. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON, or undefined for an empty body. */
  body: any;
  text: string;
}

/** `poolSize`: the API's database connections (DATABASE_POOL_SIZE), 10 unless given; `environment`: more variables. */
export async function createTestApi(
  options: { logger?: Logger; poolSize?: number; environment?: Record<string, string> } = {},
): Promise<TestApi> {
  const db = await createTestDatabase({ max: options.poolSize });
  const bucket = await createTestBucket();
  const config = loadConfig({
    ...options.environment,
    DATABASE_URL: db.url,
    S3_ENDPOINT: bucket.config.endpoint,
    S3_BUCKET: bucket.config.bucket,
  });
  const context: ServiceContext = {
    config: { ...config, s3: bucket.config },
    databaseUrl: db.url,
    database: db,
    s3: bucket.client,
    logger: options.logger ?? pino({ level: 'silent' }),
    metrics: createMetrics(db.sql),
  };
  const app = createApp(context);
  return {
    context,
    db,
    bucket,
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      if (options.key) headers.authorization ??= `Bearer ${options.key}`;
      let body: string | Uint8Array | undefined;
      if (options.body !== undefined) {
        body = typeof options.body === 'string' || options.body instanceof Uint8Array ? options.body : JSON.stringify(options.body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      }
      const response = await app.request(`http://api.test${path}`, { method, headers, body });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: parseJson(text), text };
    },
  };
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
