import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createTestApi } from '../support/api';
import { ROOT } from '../support/built';
import { testEnvironment } from '../support/environment';

/** `redocly lint` (its recommended rules, as redocly.yaml adjusts them) on the document the service serves. */

const api = await createTestApi();
const dir = await fs.mkdtemp(path.join(testEnvironment.tmpDir, 'openapi-lint-'));

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: Array<{ ruleId: string; message: string; location: Array<{ pointer: string }> }>;
}

async function lint(document: unknown): Promise<LintReport> {
  const file = path.join(dir, `openapi-${Date.now()}.json`);
  await fs.writeFile(file, JSON.stringify(document));
  // redocly exits 1 when it finds problems; the JSON report on stdout says which.
  const { stdout } = await promisify(execFile)(
    path.join(ROOT, 'node_modules/.bin/redocly'),
    ['lint', '--config', path.join(ROOT, 'redocly.yaml'), '--format=json', file],
    { cwd: ROOT, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } },
  ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  return JSON.parse(stdout) as LintReport;
}

test('the served /openapi.json has no problem, error or warning', async () => {
  const response = await api.request('GET', '/openapi.json');
  assert.equal(response.status, 200);
  const report = await lint(response.body);
  assert.deepEqual(
    report.problems.map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`),
    [],
  );
  assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 0 });
});

test('the lint sees what the document must hold: without servers, license and a declared tag it reports them', async () => {
  const { body: document } = await api.request('GET', '/openapi.json');
  const { servers: _servers, ...rest } = document;
  const report = await lint({ ...rest, info: { ...document.info, license: undefined }, tags: document.tags.slice(1) });
  const rules = new Set(report.problems.map((p) => p.ruleId));
  for (const rule of ['no-empty-servers', 'info-license', 'operation-tag-defined']) assert.ok(rules.has(rule), `${rule} reported`);
  assert.equal(rules.has('no-path-trailing-slash'), false, 'the contract’s trailing slashes are allowed (redocly.yaml)');
});
