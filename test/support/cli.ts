import { spawn } from 'node:child_process';
import { CLI_ENTRY, ROOT } from './built';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The built CLI as operators run it: a process of its own, with `env` over this process's
 * environment less DATABASE_URL and DATA_DIR (so that only what the test gives counts).
 */
export function runCli(args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const { DATABASE_URL: _ignored, DATA_DIR: _alsoIgnored, ...base } = process.env;
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
