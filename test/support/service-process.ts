import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { ROOT as root, SERVICE_COMMAND } from './built';

/** `npm start` as a child process (bin/service, without npm in between so signals reach it). */

export interface ServiceProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or 'signal name') when the process ends. */
  exited: Promise<number | string>;
}

const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

export function startServiceProcess(env: Record<string, string>): ServiceProcess {
  const child = spawn(SERVICE_COMMAND, [], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Waits until the service logs "ready" (or fails if it exits first or takes longer than `ms`). */
export async function waitForReady(service: ServiceProcess, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  let exited: number | string | undefined;
  void service.exited.then((code) => (exited = code));
  while (!/"msg":"ready"/.test(service.stdout())) {
    if (exited !== undefined) throw new Error(`service exited (${exited}) before ready:\n${service.stderr()}\n${service.stdout()}`);
    if (Date.now() > deadline) throw new Error(`service not ready within ${ms} ms:\n${service.stderr()}\n${service.stdout()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
