import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunningS3 } from './s3';

/**
 * The embedded S3 server of `npm start` in a process of its own, so that serving the upload's
 * parts does not take turns with the worker that produces them on one event loop. Still
 * zero-configuration: the service forks it and stops it; it stops by itself when the service
 * dies (src/embedded/s3-server.ts).
 */

export interface RunningS3Process extends RunningS3 {
  pid: number;
}

/** Bundled, this code is in dist/index.js beside dist/embedded/s3-server.js; from source (tsx), in src/embedded. */
function serverScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'embedded', 's3-server.js'), path.join(here, 's3-server.ts')];
  const found = candidates.find((file) => existsSync(file));
  if (!found) throw new Error(`the embedded S3 server's entry is missing (${candidates.join(', ')}): run npm run build`);
  return found;
}

const STOP_TIMEOUT_MS = 10_000;

export async function startEmbeddedS3Process(options: { directory: string; buckets: string[] }): Promise<RunningS3Process> {
  const script = serverScript();
  const child = fork(script, [JSON.stringify(options)], {
    // The service's own node flags (the young generation bin/service sets) are not for this
    // process; from source it still needs tsx's loader.
    execArgv: script.endsWith('.ts') ? process.execArgv : [],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<{ endpoint: string; port: number }>((resolve, reject) => {
    child.once('message', (message) => resolve(message as { endpoint: string; port: number }));
    child.once('error', reject);
    void exited.then(() =>
      reject(new Error(`the embedded S3 server exited before it listened (exit ${child.exitCode ?? child.signalCode})`)),
    );
  });
  let stopped: Promise<void> | undefined;
  return {
    ...ready,
    pid: child.pid!,
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopped;
    },
  };
}
