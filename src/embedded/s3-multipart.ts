import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Multipart uploads in the embedded S3 server: each part written in few system calls, and
 * CompleteMultipartUpload without hashing the object again.
 *
 * s3rver writes a part through a stream that issues one write per chunk the socket gives (about
 * 80 per 5 MiB part), and answers once its hash has seen the last chunk, which can be before the
 * file holds it. Here the chunks are hashed as they come and written in batches of up to 4 MiB,
 * one `writev` each, and the part is answered once it is on disk.
 *
 * s3rver assembles a multipart object by streaming every part through an MD5 of the whole object
 * into a new file, after the last part arrived: for a 300 MB export that was about 1.3 s between
 * the last part and the export's completion, and 0.5 s of CPU for a hash nobody needs. Here the
 * parts are copied into the object a part at a time (each part was already written and hashed
 * when it was uploaded), and the ETag is what S3 itself gives a multipart object: the MD5 of the
 * parts' binary MD5s, then `-` and the number of parts. The object appears by rename, whole.
 */

/** What this needs of s3rver's FilesystemStore (lib/stores/filesystem.js). */
export interface MultipartStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  putPart(bucket: string, uploadId: string, partNumber: number, content: AsyncIterable<Buffer>): Promise<{ size: number; md5: string }>;
  putObjectMultipart(
    bucket: string,
    uploadId: string,
    parts: Array<{ number: number; etag: string }>,
  ): Promise<{ size: number; md5: string }>;
}

/** S3's ETag of an object uploaded in parts, from the parts' MD5s (hex) in part order. */
export function multipartEtag(partMd5s: string[]): string {
  const digest = createHash('md5');
  for (const md5 of partMd5s) digest.update(Buffer.from(md5, 'hex'));
  return `${digest.digest('hex')}-${partMd5s.length}`;
}

const COPY_BUFFER_BYTES = 1024 * 1024;
const PART_WRITE_BATCH_BYTES = 4 * 1024 * 1024;
/** The most buffers one writev takes (IOV_MAX on Linux). */
const WRITEV_MAX_BUFFERS = 1024;

/** Writes every byte of `buffers` at the file's position, however many calls that takes. */
async function writeAll(file: fs.FileHandle, buffers: Buffer[]): Promise<void> {
  let left = buffers;
  while (left.length > 0) {
    const batch = left.slice(0, WRITEV_MAX_BUFFERS);
    let { bytesWritten } = await file.writev(batch);
    left = left.slice(batch.length);
    // A short write: what the batch did not write goes back in front.
    const unwritten: Buffer[] = [];
    for (const buffer of batch) {
      if (bytesWritten >= buffer.length) bytesWritten -= buffer.length;
      else {
        unwritten.push(buffer.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    left = [...unwritten, ...left];
  }
}

function writePartsInBatches(store: MultipartStore): void {
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const partPath = path.join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber));
    await fs.mkdir(path.dirname(partPath), { recursive: true });
    const digest = createHash('md5');
    let size = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const file = await fs.open(partPath, 'w');
    try {
      for await (const chunk of content) {
        digest.update(chunk);
        size += chunk.length;
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= PART_WRITE_BATCH_BYTES) {
          await writeAll(file, batch);
          batch = [];
          batchBytes = 0;
        }
      }
      await writeAll(file, batch);
    } finally {
      await file.close();
    }
    const md5 = digest.digest('hex');
    await fs.writeFile(`${partPath}.md5`, md5);
    return { size, md5 };
  };
}

function assembleMultipartWithoutRehashing(store: MultipartStore): void {
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    const uploadDir = path.join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    const [key, metadata] = await Promise.all([
      fs.readFile(path.join(uploadDir, 'key'), 'utf8'),
      fs.readFile(path.join(uploadDir, 'metadata'), 'utf8').then((text) => JSON.parse(text) as Record<string, string>),
    ]);
    const objectPath = store.getResourcePath(bucket, key, 'object');
    await fs.mkdir(path.dirname(objectPath), { recursive: true });
    // Assembled inside the upload's own directory (same file system), so that a crash leaves
    // nothing where objects are listed.
    const assembling = path.join(uploadDir, 'object');
    const out = await fs.open(assembling, 'w');
    // One buffer for every read: a fresh buffer per part costs more in page faults than the copy.
    const buffer = Buffer.allocUnsafeSlow(COPY_BUFFER_BYTES);
    let size = 0;
    const md5s: string[] = [];
    try {
      for (const part of [...parts].sort((a, b) => a.number - b.number)) {
        const partPath = path.join(uploadDir, String(part.number));
        md5s.push((await fs.readFile(`${partPath}.md5`, 'utf8')).trim());
        const input = await fs.open(partPath, 'r');
        try {
          for (;;) {
            const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
            if (bytesRead === 0) break;
            await out.write(buffer, 0, bytesRead, size);
            size += bytesRead;
          }
        } finally {
          await input.close();
        }
      }
    } finally {
      await out.close();
    }
    await fs.rename(assembling, objectPath);
    const md5 = multipartEtag(md5s);
    await store.putMetadata(bucket, key, metadata, md5);
    await fs.rm(uploadDir, { recursive: true, force: true });
    return { size, md5 };
  };
}

/** Replaces s3rver's UploadPart and CompleteMultipartUpload storage with the ones above. */
export function installMultipartUploads(store: MultipartStore): void {
  writePartsInBatches(store);
  assembleMultipartWithoutRehashing(store);
}
