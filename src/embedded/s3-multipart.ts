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
 *
 * The copying happens while the upload goes on: each part, once written, is appended to the
 * object as soon as every part before it is, so that CompleteMultipartUpload only appends what is
 * left (copying 290 MiB of parts after the last one took 180 ms, the export's last step). What
 * S3 allows beyond one upload of parts 1..n completed whole (a part uploaded again, a
 * completion with fewer parts or with gaps, a server restarted meanwhile) falls back to copying
 * every part at completion.
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

/** An upload's object as assembled so far, from parts 1, 2, ... in order (one per upload, in memory). */
interface Assembly {
  /** The MD5s (hex) of the parts appended to the object, in part order: parts 1..appended.length. */
  appended: string[];
  /** The object's bytes so far: the sum of the appended parts' sizes. */
  bytes: number;
  /** Parts written and waiting for a lower-numbered one: number -> MD5. */
  waiting: Map<number, string>;
  /** Parts being received, and the part being appended. */
  writing: Set<number>;
  copying?: number | undefined;
  /** The appending, one part after another. */
  appending: Promise<void>;
  /** A part was uploaded again, or an append failed: the object is copied whole at completion. */
  spoiled: boolean;
  buffer?: Buffer;
}

/** The upload's directory: its parts, their MD5s, its key and metadata, and the object being assembled. */
const uploadDirectory = (store: MultipartStore, bucket: string, uploadId: string) =>
  path.join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
const ASSEMBLING = 'object';

/** Copies a part's file into the object at `offset`; the bytes copied. */
async function copyPart(out: fs.FileHandle, partPath: string, offset: number, buffer: Buffer): Promise<number> {
  const input = await fs.open(partPath, 'r');
  let copied = 0;
  try {
    for (;;) {
      const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return copied;
      await out.write(buffer, 0, bytesRead, offset + copied);
      copied += bytesRead;
    }
  } finally {
    await input.close();
  }
}

/** Appends the parts that now follow the object's last one, in order. */
async function appendInOrder(uploadDir: string, assembly: Assembly): Promise<void> {
  if (!assembly.waiting.has(assembly.appended.length + 1)) return;
  // One buffer for every read: a fresh buffer per part costs more in page faults than the copy.
  assembly.buffer ??= Buffer.allocUnsafeSlow(COPY_BUFFER_BYTES);
  const out = await fs.open(path.join(uploadDir, ASSEMBLING), assembly.appended.length === 0 ? 'w' : 'r+');
  try {
    for (;;) {
      const number = assembly.appended.length + 1;
      const md5 = assembly.waiting.get(number);
      if (assembly.spoiled || md5 === undefined) return;
      assembly.waiting.delete(number);
      assembly.copying = number;
      assembly.bytes += await copyPart(out, path.join(uploadDir, String(number)), assembly.bytes, assembly.buffer);
      assembly.copying = undefined;
      assembly.appended.push(md5);
    }
  } finally {
    await out.close();
  }
}

function answerPartsOnceWritten(store: MultipartStore, assemblies: Map<string, Assembly>): void {
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const uploadDir = uploadDirectory(store, bucket, uploadId);
    const number = Number(partNumber);
    let assembly = assemblies.get(uploadDir);
    if (assembly === undefined) {
      assembly = { appended: [], bytes: 0, waiting: new Map(), writing: new Set(), appending: Promise.resolve(), spoiled: false };
      assemblies.set(uploadDir, assembly);
    }
    // The same part again (S3 keeps the last one): its file is rewritten, perhaps under an append.
    const again =
      number <= assembly.appended.length || assembly.waiting.has(number) || assembly.writing.has(number) || assembly.copying === number;
    if (again) assembly.spoiled = true;
    assembly.writing.add(number);
    try {
      return await receivePart(uploadDir, number, content, assembly);
    } finally {
      assembly.writing.delete(number);
    }
  };
}

/** Writes and hashes one part, then queues it for appending (when the object is still sound). */
async function receivePart(
  uploadDir: string,
  number: number,
  content: NodeJS.ReadableStream,
  assembly: Assembly,
): Promise<{ size: number; md5: string }> {
  const partPath = path.join(uploadDir, String(number));
  await fs.mkdir(uploadDir, { recursive: true });
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
  if (!assembly.spoiled && Number.isSafeInteger(number) && number >= 1) {
    assembly.waiting.set(number, md5);
    assembly.appending = assembly.appending
      .then(() => appendInOrder(uploadDir, assembly))
      .catch(() => {
        assembly.spoiled = true;
      });
  }
  return { size, md5 };
}

function assembleMultipartWithoutRehashing(store: MultipartStore, assemblies: Map<string, Assembly>): void {
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    const uploadDir = uploadDirectory(store, bucket, uploadId);
    const assembly = assemblies.get(uploadDir);
    assemblies.delete(uploadDir);
    await assembly?.appending;
    const [key, metadata] = await Promise.all([
      fs.readFile(path.join(uploadDir, 'key'), 'utf8'),
      fs.readFile(path.join(uploadDir, 'metadata'), 'utf8').then((text) => JSON.parse(text) as Record<string, string>),
    ]);
    const objectPath = store.getResourcePath(bucket, key, 'object');
    await fs.mkdir(path.dirname(objectPath), { recursive: true });
    const sorted = [...parts].sort((a, b) => a.number - b.number);
    // What was appended during the upload is kept when the object is exactly parts 1..n, in
    // order, and begins with those parts as they were appended; otherwise it is copied again.
    const kept =
      assembly !== undefined &&
      !assembly.spoiled &&
      assembly.appended.length <= sorted.length &&
      sorted.every((part, i) => part.number === i + 1) &&
      assembly.appended.every((md5, i) => md5 === sorted[i]!.etag)
        ? assembly
        : undefined;
    // Assembled inside the upload's own directory (same file system), so that a crash leaves
    // nothing where objects are listed.
    const assembling = path.join(uploadDir, ASSEMBLING);
    const md5s = kept ? [...kept.appended] : [];
    let size = kept ? kept.bytes : 0;
    const out = await fs.open(assembling, md5s.length > 0 ? 'r+' : 'w');
    const buffer = kept?.buffer ?? Buffer.allocUnsafeSlow(COPY_BUFFER_BYTES);
    try {
      for (const part of sorted.slice(md5s.length)) {
        const partPath = path.join(uploadDir, String(part.number));
        md5s.push((await fs.readFile(`${partPath}.md5`, 'utf8')).trim());
        size += await copyPart(out, partPath, size, buffer);
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
  const assemblies = new Map<string, Assembly>();
  answerPartsOnceWritten(store, assemblies);
  assembleMultipartWithoutRehashing(store, assemblies);
}
