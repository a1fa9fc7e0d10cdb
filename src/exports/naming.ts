import { randomBytes } from 'node:crypto';

/** Where an export's files live in the bucket, and what their downloads are called. */

/** Every object of every export lives under this prefix. */
export const EXPORT_PREFIX = 'anx_export_';

/** Everything an export's attempts wrote lives under its own prefix. */
export function exportPrefix(exportId: string): string {
  return `${EXPORT_PREFIX}${exportId}/`;
}

/**
/**
 * One folder per attempt: `anx_export_<id>/<attempt>-<token>/`. No two attempts write the same
 * key (the token tells apart two attempts with one number, as when a shutdown hands its attempt
 * back), so a late attempt can never overwrite an object a newer one completed with; the complete
 * export records the keys it owns.
 */
export function exportAttemptFolder(exportId: string, attempt: number): string {
  return `${exportPrefix(exportId)}${attempt}-${randomBytes(4).toString('hex')}/`;
}

/**
 * The folder of one attempt at one slice of a sliced export, inside a folder of the export's
 * attempt that sliced it: `anx_export_<id>/<export attempt>-<token>/slice-00002-<slice attempt>/`.
 * So the orphan sweep reads the slice's objects as that export attempt's (kept while it runs).
 */
export function exportSliceFolder(exportId: string, exportAttempt: number, sliceNumber: number, sliceAttempt: number): string {
  return `${exportAttemptFolder(exportId, exportAttempt)}slice-${String(sliceNumber).padStart(5, '0')}-${sliceAttempt}/`;
}

/** The extension of file `fileNumber` of an export: `part-0000n.<extension>` for file 2 and later. */
function numberedExtension(extension: string, fileNumber: number): string {
  return fileNumber === 1 ? extension : `part-${String(fileNumber).padStart(5, '0')}.${extension}`;
}

/**
 * File `fileNumber` (from 1) of an attempt, with the format's extension (csv, csv.gz, jsonl.zst,
 * parquet, ...: src/exports/formats.ts): `user_<creator>.<extension>` for the first (the only one
 * of a single-file export), `user_<creator>.part-00002.<extension>` and so on for the next ones,
 * so that a listing sorted by key is in the export's row order.
 */
export function exportFileKey(folder: string, createdBy: string, fileNumber: number, extension = 'csv'): string {
  return `${folder}user_${createdBy}.${numberedExtension(extension, fileNumber)}`;
}

/** The manifest of an export of several files, beside them: `user_<creator>.manifest.json`. */
export function exportManifestKey(folder: string, createdBy: string): string {
  return `${folder}user_${createdBy}.manifest.json`;
}

/** The key of a single-file export's one file: `anx_export_<id>/<attempt>-<token>/user_<creator>.<extension>`. */
export function exportObjectKey(exportId: string, attempt: number, createdBy: string, extension = 'csv'): string {
  return exportFileKey(exportAttemptFolder(exportId, attempt), createdBy, 1, extension);
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

/**
 * Content-Disposition for the download: ASCII fallback plus the full UTF-8 name (RFC 6266). File
 * 2 and later of an export are named `<name>.part-00002.<extension>` and so on.
 */
export function contentDisposition(exportName: string, extension = 'csv', fileNumber = 1): string {
  const fullExtension = numberedExtension(extension, fileNumber);
  const utf8 = encodeURIComponent(`${exportName}.${fullExtension}`).replace(
    /['()*]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${downloadFileName(exportName, fullExtension)}"; filename*=UTF-8''${utf8}`;
}
