import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { migrate } from '../src/db/migrate';
import { startEmbeddedPostgres } from '../src/embedded/postgres';
import { startEmbeddedS3 } from '../src/embedded/s3';
import { ROOT as root } from './support/built';
import { TEMPLATE_DATABASE, TEST_BUCKET } from './support/environment';

/**
 * `npm test`: Node 20's test runner has no global set-up, so this script starts one embedded
 * Postgres (fsync off) and one s3rver for the whole run, migrates a template database once,
 * then runs every test file in its own process with their addresses in the environment. Each
 * file makes its own database from the template. Everything is stopped at the end, whatever
 * happened, so no postgres survives the run.
 *
 *   npm test                         every file under test/ and src/ named *.test.ts
 *   npm test -- test/foo.test.ts     only those files
 */

function findTestFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (name === 'node_modules' || name.startsWith('.')) return [];
    if (statSync(full).isDirectory()) return findTestFiles(full);
    return name.endsWith('.test.ts') ? [full] : [];
  });
}

const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const files =
  requested.length > 0
    ? requested.map((f) => path.resolve(f))
    : ['test', 'src', 'tasks'].flatMap((d) => (existsSync(path.join(root, d)) ? findTestFiles(path.join(root, d)) : [])).sort();
const runnerFlags = process.argv.slice(2).filter((arg) => arg.startsWith('-'));

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'analytics-export-test-'));
await fs.chmod(tmp, 0o755);
const cleanups: Array<() => Promise<void>> = [() => fs.rm(tmp, { recursive: true, force: true })];
let cleaning: Promise<void> | undefined;
const cleanup = () => {
  cleaning ??= (async () => {
    for (const step of cleanups.reverse()) await step().catch((error: unknown) => console.error('cleanup:', error));
  })();
  return cleaning;
};

let child: ReturnType<typeof spawn> | undefined;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    child?.kill(signal);
    void cleanup().then(() => process.exit(130));
  });
}

let exitCode = 1;
try {
  const pg = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'postgres'), unsafeFast: true });
  cleanups.push(() => pg.stop());
  const s3 = await startEmbeddedS3({ directory: path.join(tmp, 's3'), buckets: [TEST_BUCKET] });
  cleanups.push(() => s3.stop());

  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  const templateUrl = withDatabase(pg.url, TEMPLATE_DATABASE);
  await migrate(templateUrl);
  // Nobody may connect to the template any more: CREATE DATABASE ... TEMPLATE needs it idle.
  await admin.unsafe(`ALTER DATABASE ${TEMPLATE_DATABASE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
  await admin.end();

  const concurrency = Math.max(2, os.availableParallelism());
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${concurrency}`,
      '--test-reporter=spec',
      '--test-timeout=600000',
      ...runnerFlags,
      ...files,
    ],
    {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        TEST_POSTGRES_URL: pg.url,
        TEST_S3_ENDPOINT: s3.endpoint,
        TEST_TMP_DIR: tmp,
        // The AWS SDK's notice about Node 20 (README, "Node version") would repeat in every file.
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    },
  );
  exitCode = await new Promise<number>((resolve) => child!.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
} catch (error) {
  console.error('test harness failed:', error);
} finally {
  await cleanup();
}
process.exit(exitCode);

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
