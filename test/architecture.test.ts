import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from './support/built';

/**
 * The house rules of the tree, kept by the test suite so that they cannot drift: the layers'
 * imports (dependency-cruiser, .dependency-cruiser.cjs), one formatting and one set of lint rules
 * (Biome, biome.json), and configuration read from the environment in one place.
 * docs/architecture.md explains them.
 */

const run = promisify(execFile);
const bin = (name: string) => path.join(ROOT, 'node_modules', '.bin', name);

/** Runs a checker; its own report is the failure message, so a broken rule says where. */
async function check(command: string, args: string[]): Promise<void> {
  try {
    await run(bin(command), args, { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    assert.fail(`${command} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}` || e.message);
  }
}

test('imports follow the layers: no cycles, nothing imports upwards (dependency-cruiser)', async () => {
  await check('depcruise', ['src', 'tasks', '--config', '.dependency-cruiser.cjs', '--output-type', 'err']);
});

test('the tree is formatted (biome format; `npm run format` fixes it)', async () => {
  await check('biome', ['format', '.']);
});

test('the code passes the linter (biome lint, its recommended rules with the exceptions in biome.json; warnings fail too)', async () => {
  await check('biome', ['lint', '--error-on-warnings', '.']);
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

test('the environment is read in src/config.ts only (and by bin/)', () => {
  const readers = ['src', 'tasks']
    .flatMap((dir) => sourceFiles(path.join(ROOT, dir)))
    .filter((file) => /\bprocess\.env\b/.test(readFileSync(file, 'utf8')))
    .map((file) => path.relative(ROOT, file));
  assert.deepEqual(readers, ['src/config.ts']);
});
