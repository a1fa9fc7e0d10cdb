import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/** Where an export's CSV lives in the bucket, and what its download is called. */

/** One key per export, whatever the attempt, so a retried export never leaves two objects. */
export function exportObjectKey(exportId: string, createdBy: string): string {
  return `anx_export_${exportId}/user_${createdBy}.csv`;
}

/** A download file name from the export's name: safe in a header, never empty. */
export function downloadFileName(exportName: string): string {
  const base = exportName
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, '')
    .replace(/["\\/:*?<>|;,]+/g, '_')
    .trim()
    .slice(0, 100);
  return `${base || 'export'}.csv`;
}

/** Content-Disposition for the download: ASCII fallback plus the full UTF-8 name (RFC 6266). */
export function contentDisposition(exportName: string): string {
  const utf8 = encodeURIComponent(`${exportName}.csv`).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${downloadFileName(exportName)}"; filename*=UTF-8''${utf8}`;
}

export const DOWNLOAD_URL_TTL_SECONDS = 3600;

/** A GET URL for the object, signed now and valid for one hour from now. */
export async function presignDownload(
  client: S3Client,
  bucket: string,
  key: string,
  now = new Date(),
): Promise<{ url: string; expires: Date }> {
  const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), {
    expiresIn: DOWNLOAD_URL_TTL_SECONDS,
    signingDate: now,
  });
  return { url, expires: new Date(now.getTime() + DOWNLOAD_URL_TTL_SECONDS * 1000) };
}

export async function deleteObject(client: S3Client, bucket: string, key: string): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}
