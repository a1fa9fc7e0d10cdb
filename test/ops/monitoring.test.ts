import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { createTestApi } from '../support/api';
import { ROOT } from '../support/built';
import { waitForFinalExport } from '../support/export-rows';
import { insertExport, seedCustomerReadings } from '../support/fixtures';
import { startRefusingS3 } from '../support/s3';
import { startTestWorker } from '../support/worker';

/**
 * What operators deploy next to the service: the Grafana dashboard (deploy/grafana) and the
 * Prometheus alerting rules (deploy/prometheus). Every metric they query must be one the service
 * exports after a real flow (an export run by a worker, API requests), and /metrics must follow
 * Prometheus' naming rules. With promtool on PATH, `promtool check metrics` and `promtool test
 * rules` run too; without it the test says so in its output.
 */

const DASHBOARD = path.join(ROOT, 'deploy/grafana/analytics-export.json');
const ALERTS = path.join(ROOT, 'deploy/prometheus/alerts.yml');
const ALERT_TESTS = path.join(ROOT, 'deploy/prometheus/alerts.test.yml');

// A database and worker at the top level (test/support/worker.ts): the worker's uploads are
// refused (403), so its export fails with storage_denied and its metrics name an error code.
const api = await createTestApi();
const seed = await seedCustomerReadings(api.db.sql, 1, 1);
const refusing = await startRefusingS3(403, 'AccessDenied');
after(() => refusing.close());
const worker = await startTestWorker(api.db, { ...api.bucket, config: { ...api.bucket.config, endpoint: refusing.endpoint } });

const exportId = await insertExport(api.db.sql, seed.user.id, seed.queryId);
const final = await waitForFinalExport(api.db.sql, exportId);
assert.equal(final.status, 'failed');
assert.equal(final.errors?.code, 'storage_denied');
assert.equal((await api.request('GET', '/analytics/exports/', { key: seed.user.apiKey })).status, 200);
assert.equal((await api.request('GET', '/analytics/exports/')).status, 401);

const apiMetrics = (await api.request('GET', '/metrics')).text;
const workerMetrics = await worker.context.metrics.registry.metrics();

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).error === undefined;

/** The names of the samples of a Prometheus text exposition (histograms give _bucket, _sum, _count). */
function sampleNames(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]),
  );
}

/** Each metric family's declared type, from its `# TYPE` line. */
function metricTypes(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1]!, match[2]!);
  return types;
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset']);

/**
 * The metric names a PromQL expression reads: identifiers that are not functions (followed by a
 * parenthesis), keywords, label names (inside braces or by/without/on lists), ranges or strings.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  return [...bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)]
    .map((match) => match[1]!)
    .filter((word) => !PROMQL_WORDS.has(word) && !/^(?:inf|nan)$/i.test(word));
}

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function alertRules(): AlertRule[] {
  const document = parseYaml(fs.readFileSync(ALERTS, 'utf8')) as { groups: Array<{ rules: AlertRule[] }> };
  return document.groups.flatMap((group) => group.rules);
}

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string }>;
}

function dashboardPanels(): Panel[] {
  return (JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }).panels;
}

/** Says in the test's output which checks ran, so that a run without promtool is visible. */
function report(t: TestContext, message: string): void {
  t.diagnostic(message);
  console.log(`monitoring: ${message}`);
}

describe('the dashboard and the alerting rules', () => {
  test('every metric they query is one the service exports after a flow', () => {
    const exported = new Set([...sampleNames(apiMetrics), ...sampleNames(workerMetrics)]);
    const queries = [
      ...alertRules().map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr })),
      ...dashboardPanels().flatMap((panel) =>
        (panel.targets ?? []).map((target) => ({ where: `panel ${panel.title}`, expr: target.expr })),
      ),
    ];
    assert.ok(queries.length >= 10, 'the files hold the queries');
    for (const { where, expr } of queries) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${where}: no metric found in ${expr}`);
      for (const name of names) assert.ok(exported.has(name), `${where}: ${name} is not in the service's /metrics`);
    }
  });

  test('the dashboard has the panels operators need, each on the datasource variable', () => {
    const panels = dashboardPanels().filter((panel) => panel.type !== 'row');
    const titles = panels.map((panel) => panel.title);
    for (const wanted of [
      'Queue depth by status',
      'Exports per minute by outcome',
      'Export duration',
      'Rows and bytes exported per minute',
      'Worker heartbeats',
      'API latency by route (p95)',
      'Error rate',
    ]) {
      assert.ok(titles.includes(wanted), `panel "${wanted}"`);
    }
    for (const panel of panels) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, not a template literal
      assert.equal(panel.datasource?.uid, '${datasource}', panel.title);
      assert.ok((panel.targets ?? []).length > 0, panel.title);
    }
  });

  test('every alert has a severity, a summary and a unit test that expects it to fire', () => {
    const tests = parseYaml(fs.readFileSync(ALERT_TESTS, 'utf8')) as {
      rule_files: string[];
      tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    assert.deepEqual(tests.rule_files, ['alerts.yml']);
    const expected = tests.tests.flatMap((t) => t.alert_rule_test);
    const names = alertRules().map((rule) => rule.alert);
    assert.deepEqual([...new Set(names)].sort(), [
      'AnalyticsExportApiErrors',
      'AnalyticsExportFailureRate',
      'AnalyticsExportNoWorkerHeartbeat',
      'AnalyticsExportStorageErrors',
      'AnalyticsExportsStuckQueued',
    ]);
    for (const rule of alertRules()) {
      assert.match(rule.labels?.severity ?? '', /^(warning|critical)$/, rule.alert);
      assert.ok(rule.annotations?.summary, rule.alert);
      assert.ok(
        expected.some((e) => e.alertname === rule.alert && e.exp_alerts.length > 0),
        `${rule.alert}: a test expects it to fire`,
      );
      assert.ok(
        expected.some((e) => e.alertname === rule.alert && e.exp_alerts.length === 0),
        `${rule.alert}: a test expects it quiet`,
      );
    }
  });

  test('promtool test rules passes (when promtool is on PATH)', (t) => {
    if (!promtool) {
      report(t, 'promtool is not on PATH: `promtool test rules` NOT run (the structural checks above ran)');
      return;
    }
    const run = spawnSync('promtool', ['test', 'rules', ALERT_TESTS], { encoding: 'utf8' });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    report(t, 'promtool test rules deploy/prometheus/alerts.test.yml: SUCCESS');
  });
});

describe('GET /metrics follows the naming rules', () => {
  test('only counters end in _total; every family has HELP and TYPE; export errors are counted by code', () => {
    for (const [who, text] of [
      ['api', apiMetrics],
      ['worker', workerMetrics],
    ] as const) {
      const types = metricTypes(text);
      assert.ok(types.size > 10, who);
      for (const [name, type] of types) {
        assert.match(name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/, `${who}: ${name}`);
        assert.equal(name.endsWith('_total'), type === 'counter', `${who}: ${name} is a ${type}`);
        assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), `${who}: ${name} has HELP`);
      }
    }
    assert.match(workerMetrics, /^analytics_export_errors_total\{code="storage_denied"\} 1$/m);
    assert.match(workerMetrics, /^analytics_export_errors_total\{code="storage_error"\} 0$/m, 'every code from the start');
    assert.match(workerMetrics, /^analytics_export_attempts_total\{outcome="failed"\} 1$/m);
  });

  test('promtool check metrics passes (when promtool is on PATH)', (t) => {
    if (!promtool) {
      report(t, 'promtool is not on PATH: `promtool check metrics` NOT run (the naming checks above ran)');
      return;
    }
    for (const [who, text] of [
      ['api', apiMetrics],
      ['worker', workerMetrics],
    ] as const) {
      const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(run.status, 0, `${who}: ${run.stdout}${run.stderr}`);
    }
    report(t, 'promtool check metrics on the API and the worker /metrics: no problem');
  });
});
