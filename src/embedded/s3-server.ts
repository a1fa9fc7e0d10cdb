import { startEmbeddedS3 } from './s3';

/**
 * The entry of the embedded S3 server's own process (src/embedded/s3-process.ts forks it; the
 * build writes it to dist/embedded/s3-server.js). Its options come as one JSON argument; it
 * answers {endpoint, port} over the IPC channel once it listens. It stops on SIGTERM (what the
 * service sends after its worker has drained) and when the channel closes, which is also what
 * happens when the service dies in any way, SIGKILL included: nothing is left behind. It ignores
 * SIGINT: Ctrl-C in a terminal reaches the whole process group, and the exports the service
 * drains meanwhile still upload here.
 */
const options = JSON.parse(process.argv[2] ?? '{}') as { directory: string; buckets: string[] };
const s3 = await startEmbeddedS3(options);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void s3.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', () => undefined);
process.on('disconnect', stop);
if (!process.connected) stop();
else process.send?.({ endpoint: s3.endpoint, port: s3.port });
