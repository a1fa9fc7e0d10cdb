import type { S3Client } from '@aws-sdk/client-s3';
import type { Queryable } from '../db/client';
import { cancelExportRow, deleteExportRow } from '../db/statements/exports';
import type { Logger } from '../logger';
import { deleteObjects, listObjectPages } from '../storage/objects';
import { exportPrefix } from './naming';

/** Where an export's files are, and where to say what could not be deleted. */
export interface ExportFiles {
  s3: S3Client;
  bucket: string;
  logger: Logger;
}

/**
 * Deletes an export and its files: DELETE /analytics/exports/{id}/ and retention both come here.
 * The order is chosen so that a crash at any point leaves the export whole, or no export:
 *
 * 1. cancel it if it runs (its worker stops within a second and removes what its attempt wrote,
 *    once its S3 requests have settled);
 * 2. delete the row: from here on no export owns the files;
 * 3. delete every object under the export's prefix, best effort. What is left (a delete that
 *    failed, a crash, a late write) is unowned, and the orphan sweep removes it.
 *
 * No transaction or database connection is held while S3 is called. Returns false when there
 * was no such export.
 */
export async function deleteExport(sql: Queryable, files: ExportFiles, exportId: string): Promise<boolean> {
  await cancelExportRow(sql, exportId);
  if (!(await deleteExportRow(sql, exportId))) return false;
  await deleteExportFiles(files, exportId);
  return true;
}

/** Every object under the export's prefix; failures are logged and left to the orphan sweep. */
export async function deleteExportFiles(files: ExportFiles, exportId: string): Promise<void> {
  const logger = files.logger.child({ export_id: exportId });
  try {
    for await (const page of listObjectPages(files.s3, files.bucket, exportPrefix(exportId))) {
      const { failed } = await deleteObjects(
        files.s3,
        files.bucket,
        page.map((object) => object.key),
      );
      for (const { key, error } of failed)
        logger.warn({ err: error, object_key: key }, 'could not delete an object of a deleted export; the orphan sweep will');
    }
  } catch (error) {
    logger.warn({ err: error }, 'could not list the files of a deleted export; the orphan sweep will remove them');
  }
}
