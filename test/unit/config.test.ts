import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConfigError, environmentSchema, loadConfig, loadDatabaseConfig } from '../../src/config';

/** The environment parser: every invalid value is refused with its variable named. */

const VARIABLES = Object.keys(environmentSchema);

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

/** The variable a problem names: the longest variable name it starts with (S3_ENDPOINT, not S3_E...). */
const named = (problem: string) =>
  VARIABLES.filter((name) => problem.startsWith(`${name} `) || problem.startsWith(`${name}:`)).sort((a, b) => b.length - a.length)[0];

describe('loadConfig', () => {
  test('a blank (whitespace-only) value is invalid for every variable, and the problem names it', () => {
    for (const name of VARIABLES) {
      const problems = problemsOf(() => loadConfig({ [name]: '   ' }));
      assert.ok(problems.length > 0);
      for (const problem of problems) assert.equal(named(problem), name, problem);
    }
  });

  test('several bad variables at once: each is named', () => {
    fc.assert(
      fc.property(fc.subarray(VARIABLES, { minLength: 1 }), (names) => {
        const problems = problemsOf(() => loadConfig(Object.fromEntries(names.map((name) => [name, ' ']))));
        assert.deepEqual([...new Set(problems.map(named))].sort(), [...names].sort());
      }),
    );
  });

  test('a whole number out of range names the variable and its range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 65_536, max: 10 ** 9 }), (port) => {
        assert.deepEqual(
          problemsOf(() => loadConfig({ PORT: String(port) })),
          ['PORT must be a whole number from 0 to 65535'],
        );
      }),
    );
    assert.deepEqual(
      problemsOf(() => loadConfig({ WORKER_CONCURRENCY: '65' })),
      ['WORKER_CONCURRENCY must be a whole number from 1 to 64'],
    );
  });

  test('EXPORT_MAX_FILE_MIB: 1024 MiB unless set, at least 5, at most what 9,999 parts hold', () => {
    assert.equal(loadConfig({}).export.maxFileBytes, 1024 * 1024 * 1024);
    assert.equal(loadConfig({ EXPORT_MAX_FILE_MIB: '5' }).export.maxFileBytes, 5 * 1024 * 1024);
    assert.deepEqual(
      problemsOf(() => loadConfig({ EXPORT_MAX_FILE_MIB: '4' })),
      ['EXPORT_MAX_FILE_MIB must be a whole number from 5 to 5242880'],
    );
    assert.equal(loadConfig({ EXPORT_MAX_FILE_MIB: '49995' }).export.maxFileBytes, 49_995 * 1024 * 1024);
    assert.deepEqual(
      problemsOf(() => loadConfig({ EXPORT_MAX_FILE_MIB: '49996' })),
      ['EXPORT_MAX_FILE_MIB must be at most 49995 (EXPORT_PART_SIZE_MIB x 9,999 parts)'],
    );
    assert.equal(loadConfig({ EXPORT_MAX_FILE_MIB: '49996', EXPORT_PART_SIZE_MIB: '6' }).export.maxFileBytes, 49_996 * 1024 * 1024);
  });

  test('an empty variable counts as unset', () => {
    const empty = Object.fromEntries(VARIABLES.map((name) => [name, '']));
    assert.deepEqual(loadConfig(empty), loadConfig({}));
  });
});

describe('loadDatabaseConfig', () => {
  test('the defaults and values loadConfig gives, and nothing else', () => {
    assert.deepEqual(loadDatabaseConfig({}), { dataDir: path.resolve('.data'), databaseUrl: undefined });
    const env = { DATA_DIR: '/tmp/x', DATABASE_URL: 'postgres://u@db/x', PORT: '3001' };
    const full = loadConfig(env);
    assert.deepEqual(loadDatabaseConfig(env), { dataDir: full.dataDir, databaseUrl: full.databaseUrl });
  });

  test('reads only DATA_DIR and DATABASE_URL: the service-only variables may be anything', () => {
    assert.deepEqual(loadDatabaseConfig({ PORT: 'abc', ROLE: 'both' }), { dataDir: path.resolve('.data'), databaseUrl: undefined });
    assert.deepEqual(
      problemsOf(() => loadDatabaseConfig({ DATABASE_URL: 'mysql://x' })),
      ['DATABASE_URL must be a URL starting with postgres:// or postgresql://'],
    );
    assert.deepEqual(
      problemsOf(() => loadDatabaseConfig({ DATA_DIR: ' ' })),
      ['DATA_DIR must not be empty'],
    );
  });
});
