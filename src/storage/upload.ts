import type { Readable } from 'node:stream';
import { AbortMultipartUploadCommand, DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StorageError } from './errors';

/**
 * A stream into one object: lib-storage's Upload (multipart above one part, PutObject below), read
 * a part at a time, so memory is about partSize x (queueSize + 1) whatever the size of the stream.
 */

/**
 * S3 takes at most 10,000 parts in one multipart upload, so an object can be at most
 * partSize x 10,000 bytes (about 48.8 GiB at 5 MiB parts).
 */
export const MAX_UPLOAD_PARTS = 10_000;

export function maxObjectBytes(partSizeBytes: number): number {
  return partSizeBytes * MAX_UPLOAD_PARTS;
}

export interface UploadStreamOptions {
  bucket: string;
  key: string;
  body: Readable;
  contentType: string;
  contentDisposition?: string;
  partSizeBytes: number;
  queueSize: number;
}

export interface StreamUpload {
  /** Resolves when the object is complete; rejects with a StorageError. */
  done: Promise<void>;
  /** Stops sending parts: `done` rejects. What was already sent may still land (see discard). */
  abort(): void;
  /**
   * After a failure or abort: waits for every request of the upload to settle, then removes what
   * they wrote (the multipart upload, and the object under the key, which must be the caller's
   * alone): aborting only makes `done` reject, and a PutObject or CompleteMultipartUpload already
   * sent still lands afterwards. Best effort: what could not be removed is returned, not thrown.
   */
  discard(): Promise<{ abortError?: unknown; deleteError?: unknown }>;
}

/**
 * Starts uploading `body` to `key`. Aborting is ours, not lib-storage's: its own abort would
 * replace the real error with AbortMultipartUpload's (e.g. s3rver's 405).
 */
export function uploadStream(s3: S3Client, options: UploadStreamOptions): StreamUpload {
  const requests = trackRequests(s3);
  const upload = new Upload({
    client: requests.client,
    params: {
      Bucket: options.bucket,
      Key: options.key,
      Body: options.body,
      ContentType: options.contentType,
      ...(options.contentDisposition !== undefined ? { ContentDisposition: options.contentDisposition } : {}),
    },
    partSize: options.partSizeBytes,
    queueSize: options.queueSize,
    leavePartsOnError: true,
  });
  const done = upload.done().then(
    () => undefined,
    (error: unknown) => {
      throw new StorageError(error);
    },
  );
  return {
    done,
    abort() {
      void upload.abort();
    },
    async discard() {
      await requests.settled();
      const result: { abortError?: unknown; deleteError?: unknown } = {};
      if (upload.uploadId) {
        try {
          await s3.send(new AbortMultipartUploadCommand({ Bucket: options.bucket, Key: options.key, UploadId: upload.uploadId }));
        } catch (error) {
          // s3rver has no AbortMultipartUpload (405); on AWS a lifecycle rule removes what is left.
          result.abortError = error;
        }
      }
      try {
        await s3.send(new DeleteObjectCommand({ Bucket: options.bucket, Key: options.key }));
      } catch (error) {
        result.deleteError = error;
      }
      return result;
    },
  };
}

/**
 * The S3 client as the upload sees it, counting its requests in flight: `settled()` resolves once
 * none is (lib-storage sends nothing new once aborted, and its requests carry no abort signal, so
 * a settled request is one the server has answered or that failed).
 */
function trackRequests(s3: S3Client): { client: S3Client; settled(): Promise<void> } {
  const inFlight = new Set<Promise<unknown>>();
  const client = new Proxy(s3, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver);
      const send = target.send.bind(target) as (...args: unknown[]) => Promise<unknown>;
      return (...args: unknown[]) => {
        const request = send(...args);
        inFlight.add(request);
        const forget = () => inFlight.delete(request);
        request.then(forget, forget);
        return request;
      };
    },
  });
  return {
    client,
    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
