import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { EMBEDDED_S3_CREDENTIALS, type RunningS3, startEmbeddedS3 } from '../../src/embedded/s3';

/**
 * The embedded S3 server assembles a multipart object without hashing it again: the object is the
 * parts in order, byte for byte, and its ETag is the one S3 gives an object uploaded in parts (the
 * MD5 of the parts' MD5s, `-<parts>`), computed here from the bytes sent, with node's crypto. Parts
 * sent in order are written where they belong in the object as they arrive; whatever S3 allows
 * besides one upload of parts 1..n (parts out of order, a part sent again, a completion with fewer
 * parts or with a gap) still gives the object of the parts named, in order.
 */

const BUCKET = 'multipart';
const PART = 5 * 1024 * 1024;
let directory: string;
let s3: RunningS3;
let client: S3Client;

before(async () => {
  directory = await fs.mkdtemp(path.join(os.tmpdir(), 'embedded-multipart-'));
  s3 = await startEmbeddedS3({ directory, buckets: [BUCKET] });
  client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: EMBEDDED_S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});

after(async () => {
  client.destroy();
  await s3.stop();
  await fs.rm(directory, { recursive: true, force: true });
});

const md5 = (data: Buffer) => createHash('md5').update(data).digest();

describe('embedded S3: CompleteMultipartUpload', () => {
  test('the object is the parts in order, with S3 multipart ETag, and the upload leaves nothing behind', async () => {
    // Three full parts and a short one, sent four at a time, so they arrive in any order.
    const body = randomBytes(3 * PART + 12_345);
    const key = 'nested/prefix/file.csv';
    const upload = new Upload({
      client,
      params: { Bucket: BUCKET, Key: key, Body: body, ContentType: 'text/csv; charset=utf-8' },
      partSize: PART,
      queueSize: 4,
    });
    const done = await upload.done();
    const parts = [0, 1, 2, 3].map((i) => body.subarray(i * PART, Math.min(body.length, (i + 1) * PART)));
    const expected = `"${createHash('md5')
      .update(Buffer.concat(parts.map(md5)))
      .digest('hex')}-4"`;
    assert.equal(done.ETag, expected);

    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    assert.equal(head.ContentLength, body.length);
    assert.equal(head.ETag, expected);
    assert.equal(head.ContentType, 'text/csv; charset=utf-8');

    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body), 'the object is the bytes uploaded');
    const range = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: `bytes=${PART - 10}-${PART + 9}` }));
    assert.ok(Buffer.from(await range.Body!.transformToByteArray()).equals(body.subarray(PART - 10, PART + 10)), 'a range across parts');

    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    assert.deepEqual(
      listed.Contents?.map((o) => [o.Key, o.Size]),
      [[key, body.length]],
    );
    // The parts and the assembled copy went with the upload's directory.
    const uploads = path.join(directory, BUCKET);
    const leftovers = (await fs.readdir(uploads, { recursive: true })).filter((name) => name.includes('uploads'));
    for (const name of leftovers) assert.deepEqual(await fs.readdir(path.join(uploads, name)), [], `${name} is empty`);
    assert.ok(existsSync(path.join(uploads, 'nested')));
  });

  test('a second upload to the same key replaces the object', async () => {
    const key = 'replace.bin';
    for (const size of [2 * PART + 1, PART + 7]) {
      const body = randomBytes(size);
      await new Upload({ client, params: { Bucket: BUCKET, Key: key, Body: body }, partSize: PART, queueSize: 2 }).done();
      const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
    }
  });
});

/** An upload made part by part, as S3 clients may make it: parts in any order, again, or left out. */
async function startUpload(key: string) {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  const etags = new Map<number, string>();
  return {
    async part(number: number, body: Buffer) {
      const { ETag } = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: number, Body: body }));
      etags.set(number, ETag!);
    },
    async complete(numbers: number[]) {
      const Parts = numbers.map((PartNumber) => ({ PartNumber, ETag: etags.get(PartNumber)! }));
      return client.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts } }));
    },
    /** The object being assembled in the upload's directory (s3rver keeps uploads under the bucket). */
    async assembledBytes(): Promise<number> {
      const names = await fs.readdir(path.join(directory, BUCKET), { recursive: true });
      const assembling = names.find((name) => name.includes(UploadId!) && path.basename(name) === 'object');
      return assembling === undefined ? 0 : (await fs.stat(path.join(directory, BUCKET, assembling))).size;
    },
    /** The parts with a file of their own in the upload's directory. */
    async partFiles(): Promise<string[]> {
      const names = await fs.readdir(path.join(directory, BUCKET), { recursive: true });
      return names
        .filter((name) => name.includes(UploadId!) && /^\d+$/.test(path.basename(name)))
        .map((name) => path.basename(name))
        .sort();
    },
  };
}

async function objectBytes(key: string): Promise<Buffer> {
  const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

const etagOf = (parts: Buffer[]) =>
  `"${createHash('md5')
    .update(Buffer.concat(parts.map(md5)))
    .digest('hex')}-${parts.length}"`;

describe('embedded S3: parts written in place as they arrive', () => {
  test('parts sent in order are written in place: no file of their own, the object whole before the completion', async () => {
    const parts = [randomBytes(PART), randomBytes(PART), randomBytes(1234)];
    const upload = await startUpload('in-place.bin');
    for (const [i, body] of parts.entries()) await upload.part(i + 1, body);
    assert.equal(await upload.assembledBytes(), 2 * PART + 1234, 'the three parts in the object before CompleteMultipartUpload');
    assert.deepEqual(await upload.partFiles(), [], 'no part has a file of its own');
    const done = await upload.complete([1, 2, 3]);
    assert.equal(done.ETag, etagOf(parts));
    assert.ok((await objectBytes('in-place.bin')).equals(Buffer.concat(parts)));
  });

  test('parts sent out of order: those whose place was not known yet are copied in at the completion', async () => {
    const parts = [randomBytes(PART), randomBytes(PART), randomBytes(PART), randomBytes(777)];
    const upload = await startUpload('out-of-order.bin');
    for (const number of [3, 1, 2, 4]) await upload.part(number, parts[number - 1]!);
    assert.deepEqual(await upload.partFiles(), ['3'], 'part 3 came before part 2 had begun');
    const done = await upload.complete([1, 2, 3, 4]);
    assert.equal(done.ETag, etagOf(parts));
    assert.ok((await objectBytes('out-of-order.bin')).equals(Buffer.concat(parts)));
  });

  test('a part sent again after it was written in place: the object has the last one', async () => {
    const first = [randomBytes(PART), randomBytes(PART), randomBytes(99)];
    const again = randomBytes(PART);
    const upload = await startUpload('again.bin');
    for (const [i, body] of first.entries()) await upload.part(i + 1, body);
    await upload.part(2, again);
    const done = await upload.complete([1, 2, 3]);
    const expected = [first[0]!, again, first[2]!];
    assert.equal(done.ETag, etagOf(expected));
    assert.ok((await objectBytes('again.bin')).equals(Buffer.concat(expected)));
  });

  test('a server restarted between the parts and the completion still gives the object (parts written in place are found again)', async () => {
    const restartDir = await fs.mkdtemp(path.join(os.tmpdir(), 'embedded-multipart-restart-'));
    const clientOf = (server: RunningS3) =>
      new S3Client({
        endpoint: server.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: EMBEDDED_S3_CREDENTIALS,
        requestChecksumCalculation: 'WHEN_REQUIRED',
      });
    const parts = [randomBytes(PART), randomBytes(4321)];
    const key = 'restarted.bin';
    let server = await startEmbeddedS3({ directory: restartDir, buckets: [BUCKET] });
    let restartClient = clientOf(server);
    try {
      const { UploadId } = await restartClient.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      const Parts: Array<{ PartNumber: number; ETag: string }> = [];
      for (const [i, Body] of parts.entries()) {
        const { ETag } = await restartClient.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: i + 1, Body }));
        Parts.push({ PartNumber: i + 1, ETag: ETag! });
      }
      restartClient.destroy();
      await server.stop();
      server = await startEmbeddedS3({ directory: restartDir, buckets: [BUCKET] });
      restartClient = clientOf(server);
      const done = await restartClient.send(
        new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts } }),
      );
      assert.equal(done.ETag, etagOf(parts));
      const got = await restartClient.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts)));
    } finally {
      restartClient.destroy();
      await server.stop();
      await fs.rm(restartDir, { recursive: true, force: true });
    }
  });

  test('a completion with fewer parts than were sent, or with a gap, gives the parts it names', async () => {
    const parts = [randomBytes(PART), randomBytes(PART), randomBytes(PART)];
    for (const [key, numbers] of [
      ['fewer.bin', [1, 2]],
      ['gap.bin', [1, 3]],
      ['without-the-first.bin', [2, 3]],
    ] as const) {
      const upload = await startUpload(key);
      for (const [i, body] of parts.entries()) await upload.part(i + 1, body);
      const named = numbers.map((n) => parts[n - 1]!);
      const done = await upload.complete([...numbers]);
      assert.equal(done.ETag, etagOf(named), key);
      assert.ok((await objectBytes(key)).equals(Buffer.concat(named)), key);
    }
  });
});
