import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';

/** Whether the bucket answers (HeadBucket): resolves if it does, throws the SDK's error if not. */
export async function headBucket(s3: S3Client, bucket: string, signal?: AbortSignal): Promise<void> {
  await s3.send(new HeadBucketCommand({ Bucket: bucket }), signal ? { abortSignal: signal } : {});
}
