import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What every bench (run.ts, formats.ts, slices.ts) does with processes: starts the service and its
 * own helpers as child processes with their output kept, waits for them, stops them, and stops
 * everything it started at the end or on a signal, whatever happened. One bench per process, so
 * this module holds that bench's registry.
 */

export const BENCH_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The AWS SDK's notice about Node 20 (README, "Node version") is not the bench's news.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let label = 'bench';
export const log = (message: string) => process.stderr.write(`[${label} ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

const cleanups: Array<() => Promise<void>> = [];
const children = new Set<ChildProcess>();
/** Set on a signal: loops that poll stop, so the API can close its keep-alive connections. */
let interrupted = false;
let cleaning: Promise<void> | undefined;

/** A step of the clean-up at the end; the steps run in reverse order of registration. */
export function onCleanup(step: () => Promise<void>): void {
  cleanups.push(step);
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    interrupted = true;
    for (const step of cleanups.splice(0).reverse()) await step().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    for (const child of children) child.kill('SIGKILL');
  })();
  return cleaning;
}

/**
 * Runs a bench: `name` prefixes its log lines; whatever `main` does or throws, everything it
 * started is stopped before the process exits, with main's code (0 unless it says otherwise), 1
 * if it threw, 130 on SIGINT, SIGTERM or SIGHUP.
 */
export async function runBench(name: string, main: () => Promise<number | undefined> | Promise<void>): Promise<never> {
  label = name;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => void cleanup().then(() => process.exit(130)));
  }
  let exitCode = 1;
  try {
    exitCode = (await main()) ?? 0;
  } catch (error) {
    console.error(`${name} failed:`, error);
  } finally {
    await cleanup();
  }
  process.exit(exitCode);
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  if (interrupted) throw new Error('interrupted');
}

/** A directory for the bench's data (Postgres, s3rver, files), made anew and removed at the end. */
export async function benchDirectory(dir: string): Promise<string> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  // The embedded Postgres runs as the postgres user when the bench runs as root: it must enter the directory.
  await fs.chmod(path.dirname(dir), 0o755).catch(() => undefined);
  await fs.chmod(dir, 0o755);
  onCleanup(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface Child {
  child: ChildProcess;
  /** What it wrote to stdout and stderr, interleaved (the last 500 kB to 1 MB). */
  output: () => string;
  /** Its exit code, or the signal that ended it. */
  exited: Promise<number | string>;
}

/** A child process with a small environment of its own (not the bench's) and its output kept. */
export function startProcess(command: string, args: string[], env: Record<string, string>): Child {
  const child = spawn(command, args, {
    cwd: BENCH_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 1e6) output = output.slice(-5e5);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  return { child, output: () => output, exited };
}

/** bin/service's own memory settings (README, "Configuration"), which a bench passes on when set. */
export const MEMORY_SETTINGS = ['NODE_SEMI_SPACE_MIB', 'NODE_HEAP_GROWING_PERCENT', 'MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_'] as const;

/** Those of `names` set (and not empty) in the bench's environment, to pass on to a process it starts. */
export function passedOn(names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));
}

/** The service as it ships: bin/service on the bundle `npm run build` wrote (each bench's npm script builds it first). */
export function startService(env: Record<string, string>): Child {
  return startProcess(path.join(BENCH_ROOT, 'bin/service'), [], env);
}

/** One of the bench's own TypeScript helpers (bench/*.ts), through tsx. */
export function startHelper(script: string, args: string[], env: Record<string, string> = {}): Child {
  return startProcess(process.execPath, ['--import', 'tsx', path.join(BENCH_ROOT, script), ...args], env);
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(child: Child, graceMs = 30_000): Promise<void> {
  if (child.child.exitCode !== null || child.child.signalCode !== null) return;
  child.child.kill('SIGTERM');
  const timer = setTimeout(() => child.child.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

/** What a check answers while it waits: not yet. */
type NotYet = false | undefined;

/**
 * Polls `check` until it answers something other than false or undefined, and returns that. Fails
 * after `ms`, or as soon as one of the `watching` processes exits, with the end of its output.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | NotYet | Promise<T | NotYet>,
  options: { ms: number; pollMs?: number; watching?: Child[] },
): Promise<Exclude<T, NotYet>> {
  const deadline = Date.now() + options.ms;
  const watching = options.watching ?? [];
  const exits = new Map<Child, number | string>();
  for (const child of watching) void child.exited.then((code) => exits.set(child, code));
  const outputs = () => watching.map((child) => child.output().slice(-4000)).join('\n');
  for (;;) {
    const value = await check();
    if (value !== false && value !== undefined) return value as Exclude<T, NotYet>;
    const [exited] = exits.values();
    if (exited !== undefined) throw new Error(`${what}: a process exited (${exited}):\n${outputs()}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${options.ms} ms:\n${outputs()}`);
    await sleep(options.pollMs ?? 50);
  }
}

/** Runs a command to its end (stdout to a file or nowhere); resolves with its wall time in ms, rejects with its stderr. */
export function runCommand(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; stdoutFile?: string } = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    void (async () => {
      const out = options.stdoutFile ? await fs.open(options.stdoutFile, 'w') : undefined;
      const started = performance.now();
      const child = spawn(command, args, {
        env: { ...process.env, ...options.env },
        stdio: ['ignore', out ? out.fd : 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('error', reject);
      child.on('exit', (code) => {
        const ms = performance.now() - started;
        void out?.close();
        if (code === 0) resolve(ms);
        else reject(new Error(`${command} exited ${code}: ${err}`));
      });
    })();
  });
}
