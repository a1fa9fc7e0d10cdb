import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { foldersClosedToOthers, openBinariesToPostgresUser } from '../../src/embedded/postgres';

/**
 * Run as root, embedded Postgres runs as the "postgres" user. A project checked out in a private
 * folder (`mktemp -d`: mode 700) must still start: the folders above the binaries get o+x.
 */

const base = await mkdtemp(path.join(os.tmpdir(), 'embedded-permissions-'));
await chmod(base, 0o755);
after(() => rm(base, { recursive: true, force: true }));

describe('the folders above the embedded Postgres binaries', () => {
  test('get the search bit for others where it is missing, and nothing else changes', async () => {
    // base/checkout (700) / node_modules (755) / bin (750) / initdb
    const checkout = path.join(base, 'checkout');
    const modules = path.join(checkout, 'node_modules');
    const bin = path.join(modules, 'bin');
    await mkdir(bin, { recursive: true });
    const initdb = path.join(bin, 'initdb');
    await writeFile(initdb, '');
    await chmod(checkout, 0o700);
    await chmod(modules, 0o755);
    await chmod(bin, 0o750);

    assert.deepEqual(
      (await foldersClosedToOthers(initdb)).map((f) => [f.dir, f.mode.toString(8)]),
      [
        [bin, '750'],
        [checkout, '700'],
      ],
    );
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    await openBinariesToPostgresUser(initdb);
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);

    const mode = async (dir: string) => ((await stat(dir)).mode & 0o7777).toString(8);
    assert.deepEqual([await mode(checkout), await mode(modules), await mode(bin)], ['701', '755', '751']);
    assert.deepEqual(await foldersClosedToOthers(initdb), []);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, new RegExp(`o\\+x\\) on ${bin} `));
  });
});
