import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { compileExportQuery } from '../../src/exports/load-export-query';
import { createTestApi } from '../support/api';
import { runCli, type CliRun } from '../support/cli';
import { testEnvironment } from '../support/environment';
import { markFailed, markRunning } from '../support/exports';
import { createCustomer, createPartner, createQuery, createUser, insertExport } from '../support/fixtures';

/**
 * The CLI as operators and scripts run it: a separate process, JSON on stdout, errors on
 * stderr, exit 2 with a usage line on bad arguments, 3 with one wording when an id names
 * nothing, 1 when the command fails otherwise; --help on stdout with exit 0.
 */

const api = await createTestApi();
const { sql } = api.db;

type Run = CliRun;

const cli = (args: string[], env: Record<string, string | undefined> = { DATABASE_URL: api.db.url }): Promise<Run> => runCli(args, env);

/** A timestamp as the API prints it, e.g. "2020-08-13T19:37:21.755074Z". */
const API_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/** A successful run: exit 0, nothing on stderr, exactly one JSON document on stdout. */
function json(run: Run) {
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, '');
  assert.equal(run.stdout.trim().split('\n').length, 1, 'one line of JSON');
  return JSON.parse(run.stdout);
}

/** An id that names nothing: exit 3, `error: no <thing> with id <id>` on stderr, nothing on stdout. */
function notFound(run: Run, thing: string, id: string) {
  assert.equal(run.code, 3, `exit 3: ${run.stderr}`);
  assert.equal(run.stdout, '');
  assert.equal(run.stderr, `error: no ${thing} with id ${id}\n`);
}

function usageFailure(run: Run, pattern: RegExp) {
  assert.equal(run.code, 2, `exit 2: ${run.stderr}`);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /usage: cli /);
  assert.match(run.stderr, pattern);
}

describe('partners, customers and users', () => {
  test('create a tenant and a user whose API key works against the API', async () => {
    const partner = json(await cli(['partners', 'create', '--name', 'Acme Partner']));
    assert.deepEqual(Object.keys(partner), ['id']);
    const customer = json(await cli(['customers', 'create', '--partner', partner.id, '--name', 'Acme Customer']));
    assert.deepEqual(Object.keys(customer), ['id']);
    const [row] =
      await sql`SELECT c.name, c.partner_id, p.name AS partner FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.id = ${customer.id}`;
    assert.deepEqual({ ...row }, { name: 'Acme Customer', partner_id: partner.id, partner: 'Acme Partner' });

    const user = json(
      await cli(['users', 'create', '--email', 'ops@acme.example', '--account-type', 'customer', '--customer', customer.id]),
    );
    assert.deepEqual(Object.keys(user), ['id', 'api_key']);
    const [stored] =
      await sql`SELECT account_type, customer_id, (SELECT key_hash FROM api_keys WHERE user_id = users.id) AS key_hash FROM users WHERE id = ${user.id}`;
    assert.equal(stored!.account_type, 'customer');
    assert.equal(stored!.customer_id, customer.id);
    assert.notEqual(stored!.key_hash, user.api_key, 'the key is stored hashed');
    assert.equal((await api.request('GET', '/analytics/exports/', { key: user.api_key })).status, 200);

    const partnerUser = json(
      await cli(['users', 'create', '--email', 'p@acme.example', '--account-type', 'partner', '--partner', partner.id]),
    );
    const admin = json(await cli(['users', 'create', '--email', 'root@acme.example', '--account-type', 'admin']));
    for (const key of [partnerUser.api_key, admin.api_key]) {
      assert.equal((await api.request('GET', '/analytics/queries/', { key })).status, 200);
    }
  });

  test('bad arguments: exit 2 with a usage line on stderr', async () => {
    const someone = '00000000-0000-4000-8000-000000000000';
    const cases: Array<[string[], RegExp, Record<string, string>?]> = [
      [[], /partners create --name NAME/],
      [['frobnicate'], /unknown command/],
      [['partners', 'create'], /--name is required/],
      [['partners', 'create', '--name'], /argument missing|--name/],
      [['partners', 'create', '--name', 'x', '--colour', 'red'], /Unknown option '--colour'/],
      [['partners', 'create', '--name', 'x', 'extra'], /expected 0 argument/],
      [['customers', 'create', '--partner', 'nope', '--name', 'x'], /--partner must be a uuid/],
      [['users', 'create', '--email', 'a@b.c', '--account-type', 'wizard'], /--account-type must be one of/],
      [['users', 'create', '--email', 'a@b.c', '--account-type', 'partner'], /needs --partner/],
      [
        ['users', 'create', '--email', 'a@b.c', '--account-type', 'admin', '--customer', someone],
        /an admin belongs to no partner or customer/,
      ],
      [['users', 'create', '--email', 'not-an-email', '--account-type', 'admin'], /--email/],
      [['demo-data'], /--customer is required/],
      [['demo-data', '--customer', someone, '--step', '2m'], /--step must be one of/],
      [['demo-data', '--customer', someone, '--devices', '0'], /--devices/],
      // Checked before any database is opened.
      [['partners', 'create'], /--name is required/, {}],
    ];
    const runs = await Promise.all(cases.map(([args, , env]) => cli(args, env)));
    for (const [i, run] of runs.entries()) usageFailure(run, cases[i]![1]);
  });

  test('a command that fails exits 1 with the reason on stderr; an unknown id exits 3', async () => {
    const nobody = '00000000-0000-4000-8000-000000000000';
    notFound(await cli(['customers', 'create', '--partner', nobody, '--name', 'x']), 'partner', nobody);
    notFound(
      await cli(['users', 'create', '--email', 'c@acme.example', '--account-type', 'customer', '--customer', nobody]),
      'customer',
      nobody,
    );
    notFound(await cli(['demo-data', '--customer', nobody]), 'customer', nobody);

    json(await cli(['users', 'create', '--email', 'twice@acme.example', '--account-type', 'admin']));
    const duplicate = await cli(['users', 'create', '--email', 'TWICE@acme.example', '--account-type', 'admin']);
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /already exists/);
  });
});

describe('--help', () => {
  test('the CLI, a group and every command print their usage on stdout and exit 0, without a database', async () => {
    const words = [
      ['partners', 'create'],
      ['customers', 'create'],
      ['users', 'create'],
      ['users', 'list'],
      ['users', 'rotate-key'],
      ['users', 'revoke-key'],
      ['demo-data'],
      ['exports', 'sql'],
      ['exports', 'list'],
      ['exports', 'cancel'],
      ['exports', 'retry'],
    ];
    const noDatabase = { DATA_DIR: path.join(testEnvironment.tmpDir, 'nowhere') };
    for (const args of [['--help'], ['-h'], ['help']]) {
      const run = await cli(args, noDatabase);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, '');
      assert.match(run.stdout, /^usage: cli <command> \[options\]\n/);
      for (const command of words) assert.ok(run.stdout.includes(`\n  ${command.join(' ')}`), `${args}: lists ${command.join(' ')}`);
    }
    const group = await cli(['exports', '--help'], noDatabase);
    assert.equal(group.code, 0, group.stderr);
    assert.deepEqual(
      group.stdout
        .split('\n')
        .filter((line) => /^ {2}\S/.test(line))
        .map((line) => line.trim().split(' ').slice(0, 2).join(' ')),
      ['exports sql', 'exports list', 'exports cancel', 'exports retry'],
    );
    const runs = await Promise.all(words.map((command) => cli([...command, '--help'], noDatabase)));
    runs.forEach((run, i) => {
      const command = words[i]!.join(' ');
      assert.equal(run.code, 0, `${command}: ${run.stderr}`);
      assert.equal(run.stderr, '', command);
      assert.match(run.stdout, new RegExp(`^usage: cli ${command}\\b.*\\n\\S.+\\n$`), command);
    });
    // -h works after options too; an unknown command with --help is still an unknown command.
    assert.match((await cli(['users', 'rotate-key', '--user', 'x', '-h'], noDatabase)).stdout, /^usage: cli users rotate-key --user ID\n/);
    const unknown = await cli(['frobnicate', '--help'], noDatabase);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command: frobnicate/);
  });
});

describe('users list, rotate-key and revoke-key', () => {
  test('rotate-key prints a new key that works; the old one answers 401 from then on', async () => {
    const partnerId = await createPartner(sql);
    const user = await createUser(sql, 'partner', { partnerId });
    assert.equal((await api.request('GET', '/analytics/exports/', { key: user.apiKey })).status, 200);

    const rotated = json(await cli(['users', 'rotate-key', '--user', user.id]));
    assert.deepEqual(Object.keys(rotated), ['id', 'api_key']);
    assert.equal(rotated.id, user.id);
    assert.notEqual(rotated.api_key, user.apiKey);
    assert.equal((await api.request('GET', '/analytics/exports/', { key: user.apiKey })).status, 401);
    assert.equal((await api.request('GET', '/analytics/exports/', { key: rotated.api_key })).status, 200);

    const again = json(await cli(['users', 'rotate-key', '--user', user.id]));
    assert.equal((await api.request('GET', '/analytics/exports/', { key: rotated.api_key })).status, 401);
    assert.equal((await api.request('GET', '/analytics/exports/', { key: again.api_key })).status, 200);
  });

  test('revoke-key: every key of that user answers 401, other users keep theirs', async () => {
    const partnerId = await createPartner(sql);
    const user = await createUser(sql, 'partner', { partnerId });
    const bystander = await createUser(sql, 'partner', { partnerId });
    const revoked = json(await cli(['users', 'revoke-key', '--user', user.id]));
    assert.deepEqual(revoked, { id: user.id, revoked: true });
    assert.equal((await api.request('GET', '/analytics/exports/', { key: user.apiKey })).status, 401);
    assert.equal((await api.request('GET', '/analytics/exports/', { key: bystander.apiKey })).status, 200);
    // A rotation afterwards lets the user back in with the new key only.
    const rotated = json(await cli(['users', 'rotate-key', '--user', user.id]));
    assert.equal((await api.request('GET', '/analytics/exports/', { key: rotated.api_key })).status, 200);
    assert.equal((await api.request('GET', '/analytics/exports/', { key: user.apiKey })).status, 401);
  });

  test('list prints every user with membership and last use, never a key or a hash', async () => {
    const partnerId = await createPartner(sql);
    const customerId = await createCustomer(sql, partnerId);
    const customerUser = await createUser(sql, 'customer', { customerId });
    const unused = await createUser(sql, 'admin');
    assert.equal((await api.request('GET', '/analytics/queries/', { key: customerUser.apiKey })).status, 200);

    const run = await cli(['users', 'list']);
    const users: Array<Record<string, unknown>> = json(run);
    assert.ok(Array.isArray(users));
    const [stored] = await sql<{ key_hash: string }[]>`SELECT key_hash FROM api_keys WHERE user_id = ${customerUser.id}`;
    assert.ok(!run.stdout.includes(customerUser.apiKey) && !run.stdout.includes(stored!.key_hash), 'no key, no hash');
    const listed = users.find((u) => u.id === customerUser.id)!;
    assert.deepEqual(Object.keys(listed), ['id', 'email', 'account_type', 'partner', 'customer', 'created', 'last_used']);
    assert.equal(listed.account_type, 'customer');
    assert.equal(listed.partner, null);
    assert.equal(listed.customer, customerId);
    assert.ok(Date.parse(String(listed.last_used)) > Date.now() - 60_000, 'the request just made is its last use');
    assert.equal(users.find((u) => u.id === unused.id)!.last_used, null);
    // Timestamps as the API prints them: ISO 8601 in UTC with microseconds.
    assert.match(String(listed.created), API_TIMESTAMP);
    assert.match(String(listed.last_used), API_TIMESTAMP);
    const count = (await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM users`)[0]!.count;
    assert.equal(users.length, count);
  });

  test('an unknown user exits 3 with a message; a missing or malformed --user exits 2', async () => {
    const nobody = '00000000-0000-4000-8000-000000000000';
    for (const words of [
      ['users', 'rotate-key'],
      ['users', 'revoke-key'],
    ]) {
      notFound(await cli([...words, '--user', nobody]), 'user', nobody);
      usageFailure(await cli(words), /--user is required/);
      usageFailure(await cli([...words, '--user', 'nope']), /--user must be a uuid/);
    }
    const count = (await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM api_keys WHERE user_id = ${nobody}`)[0]!.count;
    assert.equal(count, 0);
  });
});

describe('demo-data', () => {
  test('writes devices x steps x metrics readings and says what it wrote', async () => {
    const partner = json(await cli(['partners', 'create', '--name', 'Demo P']));
    const customer = json(await cli(['customers', 'create', '--partner', partner.id, '--name', 'Demo C']));
    const result = json(
      await cli([
        'demo-data',
        '--customer',
        customer.id,
        '--devices',
        '3',
        '--days',
        '2',
        '--step',
        '1h',
        '--metrics',
        'temperature,energy',
      ]),
    );
    assert.deepEqual(Object.keys(result), ['devices', 'metrics', 'readings', 'start', 'end']);
    assert.equal(result.devices.length, 3);
    assert.deepEqual(result.metrics, ['temperature', 'energy']);
    assert.equal(result.readings, 3 * 48 * 2);
    assert.equal(Date.parse(result.end) - Date.parse(result.start), 2 * 86_400_000);
    assert.equal(Date.parse(result.end) % 3_600_000, 0, 'ends on the hour');

    const [counts] = await sql`
      SELECT count(*)::int AS readings, count(DISTINCT device_id)::int AS devices, min(ts) AS first, max(ts) AS last
        FROM device_readings WHERE device_id = ANY (${result.devices}::uuid[])`;
    assert.equal(counts!.readings, result.readings);
    assert.equal(counts!.devices, 3);
    // Vacuumed and analysed after the bulk load: the planner knows the tables the export's SELECT
    // reads, and the first export does not set the hint bits of every new page.
    const analysed = await sql<{ relname: string }[]>`
      SELECT relname FROM pg_stat_user_tables
       WHERE relname IN ('devices', 'spaces', 'device_readings') AND last_analyze IS NOT NULL AND last_vacuum IS NOT NULL
       ORDER BY relname`;
    assert.deepEqual(
      analysed.map((t) => t.relname),
      ['device_readings', 'devices', 'spaces'],
    );
    assert.equal(new Date(counts!.first).getTime(), Date.parse(result.start));
    assert.equal(new Date(counts!.last).getTime(), Date.parse(result.end) - 3_600_000, 'end is exclusive');
    const [owned] =
      await sql`SELECT count(*)::int AS n FROM devices WHERE id = ANY (${result.devices}::uuid[]) AND customer_id = ${customer.id}`;
    assert.equal(owned!.n, 3);

    const unknown = await cli(['demo-data', '--customer', customer.id, '--metrics', 'temperature,flux']);
    usageFailure(unknown, /unknown: flux/);
  });

  test('defaults: 10 devices, 7 days at 5m, every metric of the catalogue', async () => {
    const partner = json(await cli(['partners', 'create', '--name', 'Defaults P']));
    const customer = json(await cli(['customers', 'create', '--partner', partner.id, '--name', 'Defaults C']));
    const result = json(await cli(['demo-data', '--customer', customer.id]));
    const [catalogue] = await sql`SELECT count(*)::int AS n FROM metrics`;
    assert.equal(result.devices.length, 10);
    assert.equal(result.metrics.length, catalogue!.n);
    assert.equal(result.readings, 10 * 7 * 288 * catalogue!.n);
  });
});

describe('the database', () => {
  test('without DATABASE_URL, the one DATA_DIR/dev.json records', async () => {
    const dataDir = path.join(testEnvironment.tmpDir, `cli-${Date.now()}`);
    await fs.mkdir(dataDir, { recursive: true });
    await fs.writeFile(path.join(dataDir, 'dev.json'), JSON.stringify({ base_url: 'http://x', api_key: null, database_url: api.db.url }));
    const partner = json(await cli(['partners', 'create', '--name', 'From dev.json'], { DATA_DIR: dataDir }));
    const [row] = await sql`SELECT name FROM partners WHERE id = ${partner.id}`;
    assert.equal(row!.name, 'From dev.json');
  });

  test('with neither, exit 1 and say how to fix it', async () => {
    const run = await cli(['partners', 'create', '--name', 'x'], { DATA_DIR: path.join(testEnvironment.tmpDir, 'nowhere') });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /set DATABASE_URL/);
  });
});

describe('exports sql', () => {
  test('prints the exact SELECT the worker runs, which runs and yields the export’s rows', async () => {
    const partner = json(await cli(['partners', 'create', '--name', 'SQL P']));
    const customer = json(await cli(['customers', 'create', '--partner', partner.id, '--name', 'SQL C']));
    const user = json(
      await cli(['users', 'create', '--email', 'sql@acme.example', '--account-type', 'customer', '--customer', customer.id]),
    );
    const data = json(
      await cli(['demo-data', '--customer', customer.id, '--devices', '2', '--days', '1', '--step', '1h', '--metrics', 'temperature']),
    );
    const queryId = await createQuery(
      sql,
      user.id,
      { metrics: ['temperature'], start: data.start, end: data.end },
      { customerScopes: [customer.id] },
    );
    const exportId = await insertExport(sql, user.id, queryId, { customerScopes: [customer.id] });

    const run = await cli(['exports', 'sql', exportId]);
    assert.equal(run.code, 0, run.stderr);
    const select = run.stdout.trim();
    assert.equal(select, await compileExportQuery(sql, exportId));
    assert.match(select, /^(WITH|SELECT)\b/);
    const rows = await sql.unsafe(select);
    assert.equal(rows.length, 2 * 24);
    assert.deepEqual(Object.keys(rows[0]!), ['timestamp', 'device_id', 'device_name', 'space_id', 'space_name', 'metric', 'value']);
  });

  test('an unknown export exits 3, a malformed id exits 2', async () => {
    notFound(await cli(['exports', 'sql', '00000000-0000-4000-8000-000000000000']), 'export', '00000000-0000-4000-8000-000000000000');
    usageFailure(await cli(['exports', 'sql', 'not-a-uuid']), /ID must be the uuid of an export/);
    usageFailure(await cli(['exports', 'sql']), /expected 1 argument/);
  });
});

describe('exports list, cancel and retry', () => {
  test('list reads the analytics_export_jobs view, newest first, filtered by status and limited', async () => {
    const customerId = await createCustomer(sql, await createPartner(sql));
    const owner = await createUser(sql, 'customer', { customerId });
    const queryId = await createQuery(sql, owner.id, {
      metrics: ['temperature'],
      start: '2026-01-01T00:00:00Z',
      end: '2026-01-02T00:00:00Z',
    });
    const failed = await insertExport(sql, owner.id, queryId, { name: 'broken one' });
    await markFailed(sql, failed, { code: 'query_error', message: 'division by zero' });
    const running = await insertExport(sql, owner.id, queryId);
    await markRunning(sql, running, { rows: 5, bytes: 99 });

    const all = json(await cli(['exports', 'list']));
    assert.ok(Array.isArray(all));
    const [{ n }] = (await sql`SELECT count(*)::int AS n FROM analytics_exports`) as unknown as [{ n: number }];
    assert.equal(all.length, Math.min(n, 100));
    assert.equal(all[0].id, running, 'newest first');
    assert.equal(all[0].worker_id, 'test-worker');
    assert.equal(all[0].rows_written, 5);
    assert.equal(typeof all[0].heartbeat_age_seconds, 'number');

    const onlyFailed = json(await cli(['exports', 'list', '--status', 'failed', '--limit', '1']));
    assert.equal(onlyFailed.length, 1);
    assert.equal(onlyFailed[0].id, failed);
    assert.equal(onlyFailed[0].error_code, 'query_error');
    assert.deepEqual(onlyFailed[0].last_error, { code: 'query_error', message: 'division by zero' });

    usageFailure(await cli(['exports', 'list', '--status', 'done']), /--status must be one of queued, running, complete, failed/);
    usageFailure(await cli(['exports', 'list', '--limit', '0']), /--limit must be a whole number from 1 to 1000/);
    usageFailure(await cli(['exports', 'list', 'extra']), /expected 0 argument/);
  });

  test('list prints timestamps exactly as the API does (ISO 8601 UTC, microseconds)', async () => {
    const customerId = await createCustomer(sql, await createPartner(sql));
    const owner = await createUser(sql, 'customer', { customerId });
    const scopes = { customerScopes: [customerId] };
    const queryId = await createQuery(
      sql,
      owner.id,
      { metrics: ['temperature'], start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' },
      scopes,
    );
    const id = await insertExport(sql, owner.id, queryId, scopes);
    await markFailed(sql, id);
    const fromApi = await api.request('GET', `/analytics/exports/${id}/`, { key: owner.apiKey });
    assert.equal(fromApi.status, 200, fromApi.text);

    const listed = (json(await cli(['exports', 'list', '--status', 'failed'])) as Array<Record<string, unknown>>).find(
      (row) => row.id === id,
    )!;
    for (const field of ['created', 'started', 'finished'] as const) {
      assert.match(String(listed[field]), API_TIMESTAMP, field);
      assert.equal(listed[field], fromApi.body[field], field);
    }
    // The view shows run_at for queued exports only, held_since for running ones.
    assert.equal(listed.run_at, null);
    assert.equal(listed.held_since, null);
    const queued = await insertExport(sql, owner.id, queryId, scopes);
    const waiting = (json(await cli(['exports', 'list', '--status', 'queued'])) as Array<Record<string, unknown>>).find(
      (row) => row.id === queued,
    )!;
    assert.match(String(waiting.run_at), API_TIMESTAMP);
  });

  test('cancel fails a queued export, asks a running one to stop, and names the status; retry makes a new export of a failed one', async () => {
    const customerId = await createCustomer(sql, await createPartner(sql));
    const owner = await createUser(sql, 'customer', { customerId });
    const queryId = await createQuery(sql, owner.id, {
      metrics: ['temperature'],
      start: '2026-01-01T00:00:00Z',
      end: '2026-01-02T00:00:00Z',
    });
    const queued = await insertExport(sql, owner.id, queryId, { name: 'to cancel', tags: ['ops'] });
    const running = await insertExport(sql, owner.id, queryId);
    await markRunning(sql, running);

    assert.deepEqual(json(await cli(['exports', 'cancel', queued])), { id: queued, status: 'failed' });
    assert.deepEqual(json(await cli(['exports', 'cancel', running])), { id: running, status: 'running' });
    const [held] = await sql<
      { cancel_requested_at: string | null }[]
    >`SELECT cancel_requested_at FROM analytics_exports WHERE id = ${running}`;
    assert.notEqual(held!.cancel_requested_at, null);

    const retried = json(await cli(['exports', 'retry', queued]));
    assert.match(retried.id, /^[0-9a-f-]{36}$/);
    const [copy] = await sql<{ status: string; name: string; tags: string[]; retry_of: string }[]>`
      SELECT status, name, tags, retry_of FROM analytics_exports WHERE id = ${retried.id}`;
    assert.deepEqual({ ...copy }, { status: 'queued', name: 'to cancel', tags: ['ops'], retry_of: queued });

    const again = await cli(['exports', 'retry', queued]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`already retried as ${retried.id}`));
    const notFailed = await cli(['exports', 'retry', running]);
    assert.equal(notFailed.code, 1);
    assert.match(notFailed.stderr, /only a failed analytics export can be retried/);
    const unknown = '00000000-0000-4000-8000-000000000000';
    notFound(await cli(['exports', 'cancel', unknown]), 'export', unknown);
    notFound(await cli(['exports', 'retry', unknown]), 'export', unknown);
    usageFailure(await cli(['exports', 'cancel', 'nope']), /ID must be the uuid of an export/);
    usageFailure(await cli(['exports', 'retry']), /expected 1 argument/);
  });
});
