import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { exportPrefix } from '../../src/exports/naming';
import { listObjectPages } from '../../src/storage/objects';

/** Reading what an export left in the bucket. */

export async function getObject(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<{ body: Buffer; contentType?: string; contentDisposition?: string }> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = Buffer.from(await response.Body!.transformToByteArray());
  return { body, contentType: response.ContentType, contentDisposition: response.ContentDisposition };
}

/** The keys of every object under the export's prefix, sorted. */
export async function objectsOf(client: S3Client, bucket: string, exportId: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of listObjectPages(client, bucket, exportPrefix(exportId))) keys.push(...page.map((object) => object.key));
  return keys.sort();
}

export async function objectExists(client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}
