import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';

/**
 * Aborts the bucket's multipart uploads initiated before `initiatedBefore`: left incomplete (a
 * writer that died mid-upload, an abort that failed), they still cost storage. `supported` is
 * false, and nothing is done, where the S3 server cannot list uploads (s3rver cannot).
 */
export async function abortStaleUploads(
  s3: S3Client,
  bucket: string,
  initiatedBefore: Date,
): Promise<{ supported: boolean; aborted: number }> {
  const cutoff = initiatedBefore.getTime();
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  let aborted = 0;
  do {
    let page: ListMultipartUploadsCommandOutput;
    try {
      page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
    } catch (error) {
      if (!isUnsupported(error)) throw error;
      return { supported: false, aborted };
    }
    for (const upload of page.Uploads ?? []) {
      if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() > cutoff) continue;
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
      aborted++;
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker);
  return { supported: true, aborted };
}

function isUnsupported(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotImplemented' || e.$metadata?.httpStatusCode === 405 || e.$metadata?.httpStatusCode === 501;
}
