import { createHash } from 'node:crypto';
import { constants as fsConstants, createWriteStream, existsSync } from 'node:fs';
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
 * Better still, a part is written where it belongs in the object as it arrives, when its offset
 * is known: when every part before it has begun, each announcing its length (Content-Length), as
 * S3 clients send parts in order. Such a part has no file of its own (a small `<n>.at` file
 * records where it is), so the completion of parts 1..n only copies the parts that came early into
 * their places and renames the object: no second write of the export's bytes (copying 290 MiB of
 * parts after the last one had taken 180 ms, the export's last step, and copying them while the
 * upload went on cost the busy cores more than that). What S3 allows besides one upload of parts
 * 1..n (a part uploaded again, a completion with fewer parts or with gaps, a server restarted
 * meanwhile) makes the completion copy every part it names, from wherever it is, into a new file.
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

/** An upload's parts as they arrive (one per upload, in memory; lost with a restart, which only costs a copy). */
interface Assembly {
  /** The length each part announced at its first upload (Content-Length), by part number. */
  lengths: Map<number, number>;
  /** A part was uploaded again, announced no length, or came short: the completion copies every part. */
  spoiled: boolean;
}

/** The upload's directory: its parts, their MD5s, its key and metadata, and the object being assembled. */
const uploadDirectory = (store: MultipartStore, bucket: string, uploadId: string) =>
  path.join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
const ASSEMBLING = 'object';
/** Opened for writing at an offset, created if need be, never truncated. */
const IN_PLACE = fsConstants.O_WRONLY | fsConstants.O_CREAT;

/** Where part `number` goes in the object: the lengths of the parts before it, if all have begun. */
function offsetOf(assembly: Assembly, number: number): number | undefined {
  let offset = 0;
  for (let before = 1; before < number; before++) {
    const length = assembly.lengths.get(before);
    if (length === undefined) return undefined;
    offset += length;
  }
  return offset;
}

/** Copies `size` bytes (all of it when undefined) from `from` at `fromOffset` into `out` at `offset`; the bytes copied. */
async function copyRange(
  out: fs.FileHandle,
  offset: number,
  from: string,
  fromOffset: number,
  size: number | undefined,
  buffer: Buffer,
): Promise<number> {
  const input = await fs.open(from, 'r');
  let copied = 0;
  try {
    while (size === undefined || copied < size) {
      const want = size === undefined ? buffer.length : Math.min(buffer.length, size - copied);
      const { bytesRead } = await input.read(buffer, 0, want, fromOffset + copied);
      if (bytesRead === 0) break;
      await out.write(buffer, 0, bytesRead, offset + copied);
      copied += bytesRead;
    }
  } finally {
    await input.close();
  }
  if (size !== undefined && copied !== size) throw new Error(`${from}: ${copied} bytes where ${size} were expected`);
  return copied;
}

function answerPartsOnceWritten(store: MultipartStore, assemblies: Map<string, Assembly>): void {
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const uploadDir = uploadDirectory(store, bucket, uploadId);
    const number = Number(partNumber);
    let assembly = assemblies.get(uploadDir);
    if (assembly === undefined) {
      assembly = { lengths: new Map(), spoiled: false };
      assemblies.set(uploadDir, assembly);
    }
    const announced = Number((content as { headers?: Record<string, string | undefined> }).headers?.['content-length']);
    // The same part again (S3 keeps the last one) goes to a file of its own, and so does a part
    // whose place is not known yet; either way the completion copies what it needs.
    if (assembly.lengths.has(number) || !Number.isSafeInteger(announced) || !Number.isSafeInteger(number) || number < 1) {
      assembly.spoiled = true;
    } else {
      assembly.lengths.set(number, announced);
    }
    const offset = assembly.spoiled ? undefined : offsetOf(assembly, number);
    await fs.mkdir(uploadDir, { recursive: true });
    const partPath = path.join(uploadDir, String(number));
    const file =
      offset === undefined
        ? createWriteStream(partPath, { highWaterMark: PART_WRITE_BUFFER_BYTES })
        : (await fs.open(path.join(uploadDir, ASSEMBLING), IN_PLACE)).createWriteStream({
            start: offset,
            highWaterMark: PART_WRITE_BUFFER_BYTES,
          });
    const written = await receivePart(content, file);
    if (written.size !== announced) assembly.spoiled = true;
    if (offset !== undefined) await fs.writeFile(`${partPath}.at`, `${offset} ${written.size}`);
    await fs.writeFile(`${partPath}.md5`, written.md5);
    return written;
  };
}

/** Hashes one part on its way into `file`; resolves once the file has written all of it. */
async function receivePart(content: NodeJS.ReadableStream, file: NodeJS.WritableStream): Promise<{ size: number; md5: string }> {
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
  await new Promise<void>((resolve, reject) => {
    content.once('error', reject);
    hashing.once('error', reject);
    file.once('error', reject);
    file.once('finish', resolve);
    content.pipe(hashing).pipe(file);
  });
  return { size, md5: digest.digest('hex') };
}

/** Where a part's bytes are: its own file (its latest upload) or its place in the object. */
async function partSource(uploadDir: string, number: number): Promise<{ path: string; offset: number; size?: number }> {
  const partPath = path.join(uploadDir, String(number));
  if (existsSync(partPath)) return { path: partPath, offset: 0 };
  const [offset, size] = (await fs.readFile(`${partPath}.at`, 'utf8')).split(' ').map(Number);
  return { path: path.join(uploadDir, ASSEMBLING), offset: offset!, size: size! };
}

function assembleMultipartWithoutRehashing(store: MultipartStore, assemblies: Map<string, Assembly>): void {
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    const uploadDir = uploadDirectory(store, bucket, uploadId);
    const assembly = assemblies.get(uploadDir);
    assemblies.delete(uploadDir);
    const [key, metadata] = await Promise.all([
      fs.readFile(path.join(uploadDir, 'key'), 'utf8'),
      fs.readFile(path.join(uploadDir, 'metadata'), 'utf8').then((text) => JSON.parse(text) as Record<string, string>),
    ]);
    const objectPath = store.getResourcePath(bucket, key, 'object');
    await fs.mkdir(path.dirname(objectPath), { recursive: true });
    const sorted = [...parts].sort((a, b) => a.number - b.number);
    const md5s = await Promise.all(
      sorted.map(async (part) => (await fs.readFile(path.join(uploadDir, `${part.number}.md5`), 'utf8')).trim()),
    );
    // One buffer for every read: a fresh buffer per part costs more in page faults than the copy.
    const buffer = Buffer.allocUnsafeSlow(COPY_BUFFER_BYTES);
    // Parts 1..n of one upload each, as their ETags say: the object is in place but for the parts
    // that came before their place was known, copied in now. Anything else: a new file.
    const whole =
      assembly !== undefined &&
      !assembly.spoiled &&
      sorted.every((part, i) => part.number === i + 1 && part.etag === md5s[i] && assembly.lengths.has(part.number));
    const assembling = path.join(uploadDir, whole ? ASSEMBLING : `${ASSEMBLING}.copy`);
    const out = await fs.open(assembling, whole ? IN_PLACE : 'w');
    let size = 0;
    try {
      for (const part of sorted) {
        const partPath = path.join(uploadDir, String(part.number));
        if (whole) {
          const length = assembly.lengths.get(part.number)!;
          if (existsSync(partPath)) await copyRange(out, size, partPath, 0, length, buffer);
          size += length;
        } else {
          const source = await partSource(uploadDir, part.number);
          size += await copyRange(out, size, source.path, source.offset, source.size, buffer);
        }
      }
      // Parts beyond the last one named were written in place too: they are not the object's.
      await out.truncate(size);
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
