import { AbortMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { Task } from 'graphile-worker';
import type { ServiceContext } from '../src/context';

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
    const cutoff = Date.now() - STALE_AFTER_MS;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    let aborted = 0;
    do {
      let page;
      try {
        page = await s3.send(
          new ListMultipartUploadsCommand({ Bucket: config.s3.bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
      } catch (error) {
        if (!isUnsupported(error)) throw error;
        logger.info('the S3 server does not list multipart uploads; stale uploads are not cleaned up');
        return;
      }
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() > cutoff) continue;
        await s3.send(new AbortMultipartUploadCommand({ Bucket: config.s3.bucket, Key: upload.Key, UploadId: upload.UploadId }));
        aborted++;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    if (aborted > 0) logger.info({ aborted }, 'stale multipart uploads aborted');
  };
}

function isUnsupported(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotImplemented' || e.$metadata?.httpStatusCode === 405 || e.$metadata?.httpStatusCode === 501;
}
