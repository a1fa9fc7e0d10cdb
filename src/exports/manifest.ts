/**
 * The manifest of an export written as several files: what its `url` downloads, so that a client
 * that reads `url` gets the list of every file, never the first file taken for the whole export.
 * Its shape is Redshift UNLOAD's manifest (`entries` of `url` and `meta`), so that tools that load
 * such manifests can read it: each entry is an `s3://bucket/key` URL with the file's size
 * (`content_length`) and rows (`record_count`), in the export's row order, and `meta` holds the
 * sums. Signed download links of the same files are in the export's `files`.
 */

export const MANIFEST_CONTENT_TYPE = 'application/json';

export interface ManifestFile {
  key: string;
  rows: number;
  bytes: number;
}

export function exportManifest(bucket: string, files: ManifestFile[]): string {
  const entries = files.map((file) => ({
    url: `s3://${bucket}/${file.key}`,
    mandatory: true,
    meta: { content_length: file.bytes, record_count: file.rows },
  }));
  const sum = (pick: (file: ManifestFile) => number) => files.reduce((total, file) => total + pick(file), 0);
  return `${JSON.stringify({ entries, meta: { content_length: sum((f) => f.bytes), record_count: sum((f) => f.rows) } }, null, 2)}\n`;
}
