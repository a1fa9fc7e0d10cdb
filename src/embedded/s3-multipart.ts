import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import { Transform } from 'node:stream';
import path from 'node:path';

/**
 * Multipart uploads in the embedded S3 server: parts answered once written, and
 * CompleteMultipartUpload without hashing the object again.
 *
 * s3rver answers an UploadPart once its hash has seen the part's last byte, which can be before
 * its file stream has written it: a CompleteMultipartUpload that follows at once could read a
 * part cut short. Here the part is hashed and piped to its file as s3rver does, but with room for
 * 4 MiB to gather while the disk is busy, so that it is written in few writev calls, and answered
 * once the file holds all of it. (Batches gathered through an async iterator over the request
 * cost more CPU than they saved: the iterator joins what the socket buffered.)
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
  putPart(bucket: string, uploadId: string, partNumber: number, content: NodeJS.ReadableStream): Promise<{ size: number; md5: string }>;
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
/**
 * How much of a part may wait for the disk: while one write is under way the file stream gathers
 * what arrives, and writes it with one writev (at the streams' default of 16 kB, the socket was
 * paused after every chunk and each chunk was a write of its own).
 */
const PART_WRITE_BUFFER_BYTES = 4 * 1024 * 1024;

function answerPartsOnceWritten(store: MultipartStore): void {
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const partPath = path.join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber));
    await fs.mkdir(path.dirname(partPath), { recursive: true });
    const digest = createHash('md5');
    let size = 0;
    const hashing = new Transform({
      highWaterMark: PART_WRITE_BUFFER_BYTES,
      transform(chunk: Buffer, _encoding, callback) {
        digest.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    // Piped as s3rver pipes it (pipeline() costs more CPU here); resolves once the file stream has
    // written every byte (readable by CompleteMultipartUpload), without waiting for its close:
    // waiting for it held each part's answer back and made 1.2 GB uploads 12% slower.
    const file = createWriteStream(partPath, { highWaterMark: PART_WRITE_BUFFER_BYTES });
    await new Promise<void>((resolve, reject) => {
      content.once('error', reject);
      hashing.once('error', reject);
      file.once('error', reject);
      file.once('finish', resolve);
      content.pipe(hashing).pipe(file);
    });
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
  answerPartsOnceWritten(store);
  assembleMultipartWithoutRehashing(store);
}
