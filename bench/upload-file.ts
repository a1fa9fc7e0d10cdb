import { createReadStream } from 'node:fs';
import { Upload } from '@aws-sdk/lib-storage';
import { loadConfig } from '../src/config';
import { createS3Client } from '../src/storage/s3-client';

/**
 * "Upload alone": one file through the same Upload settings (part size, queue size, client
 * options) the worker uses, into the same S3 server. Run as a process of its own, like the worker.
 * Prints {"ms": ..., "bytes": ..., "peakRssMiB": ...}.
 */
const [file, key] = process.argv.slice(2);
const config = loadConfig();
const s3 = createS3Client({ ...config.s3 });
const body = createReadStream(file!, { highWaterMark: 64 * 1024 });
const started = performance.now();
const upload = new Upload({
  client: s3,
  params: { Bucket: config.s3.bucket, Key: key!, Body: body, ContentType: 'text/csv; charset=utf-8' },
  partSize: config.export.partSizeBytes,
  queueSize: config.export.uploadQueueSize,
  leavePartsOnError: true,
});
await upload.done();
const ms = performance.now() - started;
s3.destroy();
process.stdout.write(`${JSON.stringify({ ms, bytes: body.bytesRead, peakRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
