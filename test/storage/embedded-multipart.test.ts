import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { EMBEDDED_S3_CREDENTIALS, type RunningS3, startEmbeddedS3 } from '../../src/embedded/s3';

/**
 * The embedded S3 server assembles a multipart object without hashing it again: the object is the
 * parts in order, byte for byte, and its ETag is the one S3 gives an object uploaded in parts (the
 * MD5 of the parts' MD5s, `-<parts>`), computed here from the bytes sent, with node's crypto.
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
