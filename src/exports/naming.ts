import { randomBytes } from 'node:crypto';

/** Where an export's file lives in the bucket, and what its download is called. */

/** Every object of every export lives under this prefix. */
export const EXPORT_PREFIX = 'anx_export_';

/** Everything an export's attempts wrote lives under its own prefix. */
export function exportPrefix(exportId: string): string {
  return `${EXPORT_PREFIX}${exportId}/`;
}

/**
 * One key per attempt: `anx_export_<id>/<attempt>-<token>/user_<creator>.<extension>` (csv,
 * csv.gz, jsonl.zst, parquet, ...: src/exports/formats.ts). No two attempts
 * write the same key (the token tells apart two attempts with one number, as when a shutdown
 * hands its attempt back), so a late attempt can never overwrite the object a newer one
 * completed with; the complete export records the key it owns.
 */
export function exportObjectKey(exportId: string, attempt: number, createdBy: string, extension = 'csv'): string {
  return `${exportPrefix(exportId)}${attempt}-${randomBytes(4).toString('hex')}/user_${createdBy}.${extension}`;
}

/** The export and attempt a key belongs to, as exportObjectKey wrote it; attempt is absent for older keys. */
export function parseExportObjectKey(key: string): { exportId: string; attempt?: number } | undefined {
  const match = /^anx_export_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/(?:(\d+)-[0-9a-f]+\/)?/.exec(key);
  if (!match) return undefined;
  return match[2] === undefined ? { exportId: match[1]! } : { exportId: match[1]!, attempt: Number(match[2]) };
}

/** A download file name from the export's name: safe in a header, never empty. */
export function downloadFileName(exportName: string, extension = 'csv'): string {
  const base = exportName
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, '')
    .replace(/["\\/:*?<>|;,]+/g, '_')
    .trim()
    .slice(0, 100);
  return `${base || 'export'}.${extension}`;
}

/** Content-Disposition for the download: ASCII fallback plus the full UTF-8 name (RFC 6266). */
export function contentDisposition(exportName: string, extension = 'csv'): string {
  const utf8 = encodeURIComponent(`${exportName}.${extension}`).replace(
    /['()*]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${downloadFileName(exportName, extension)}"; filename*=UTF-8''${utf8}`;
}
