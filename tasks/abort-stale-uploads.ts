import type { Task } from 'graphile-worker';
import type { ServiceContext } from '../src/context';
import { abortStaleUploads } from '../src/storage/stale-uploads';

/**
 * Hygiene (crontab, hourly): multipart uploads left incomplete for more than a day (a worker
 * that died mid-upload, an abort that failed) still cost storage; abort them. Where the S3
 * server cannot list uploads (s3rver cannot) this logs that once per run and does nothing.
 */
export const ABORT_STALE_UPLOADS_TASK = 'abort_stale_uploads';
const STALE_AFTER_MS = 24 * 3600 * 1000;

export function abortStaleUploadsTask(context: ServiceContext): Task {
  const { s3, config, logger } = context;
  return async () => {
    const { supported, aborted } = await abortStaleUploads(s3, config.s3.bucket, new Date(Date.now() - STALE_AFTER_MS));
    if (!supported) {
      logger.info('the S3 server does not list multipart uploads; stale uploads are not cleaned up');
      return;
    }
    if (aborted > 0) logger.info({ aborted }, 'stale multipart uploads aborted');
  };
}
