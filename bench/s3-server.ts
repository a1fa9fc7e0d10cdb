import { startEmbeddedS3 } from '../src/embedded/s3';

/** The bench's s3rver in a process of its own, so that neither the bench nor the worker shares its event loop. */
const [directory, bucket] = process.argv.slice(2);
const s3 = await startEmbeddedS3({ directory: directory!, buckets: [bucket!] });
process.stdout.write(`${JSON.stringify({ endpoint: s3.endpoint })}\n`);
const stop = () => void s3.stop().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
