import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from './config';
import type { Database } from './db/client';
import type { ExportWaits } from './exports/export-waits';
import type { Logger } from './logger';
import type { Metrics } from './observability/metrics';
import type { CheckResult } from './observability/check-result';

/** What the API and the worker are given: everything they use is passed in, nothing is global. */
export interface ServiceContext {
  config: Config;
  /** The resolved database URL (the embedded cluster's when DATABASE_URL is unset). */
  databaseUrl: string;
  database: Database;
  s3: S3Client;
  /** Signs download links when S3_PUBLIC_ENDPOINT is set (its endpoint); otherwise `s3` does. */
  publicS3?: S3Client | undefined;
  logger: Logger;
  /** This process's Prometheus registry (GET /metrics) and the recorders of what it did. */
  metrics: Metrics;
  /** Set while this process runs the worker: whether its job runner is taking jobs (GET /readyz). */
  workerHealth?: () => CheckResult;
  /**
   * Requests waiting for exports to finish (GET ?wait=N). Set by the service, which stops it
   * first at shutdown so that they answer at once; an app without it makes its own.
   */
  exportWaits?: ExportWaits;
}
