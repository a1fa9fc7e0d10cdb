import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTestApi } from '../support/api';
import { createCustomerWithQuery } from '../support/fixtures';

/**
 * The file choices on POST /analytics/export (format, compression, formula_guard): defaults that
 * leave the contract's export as it was, 400s that list the choices with nothing stored, and the
 * resource showing what was chosen on create, GET and list.
 */

const api = await createTestApi();
const { sql } = api.db;
const { user, queryId } = await createCustomerWithQuery(sql);

const create = (body: Record<string, unknown>) =>
  api.request('POST', '/analytics/export', { key: user.apiKey, body: { name: 'Formats', query: queryId, ...body } });

async function exportCount(): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM analytics_exports`;
  return row!.n;
}

describe('POST /analytics/export with file choices', () => {
  test("the contract's fields alone: csv, uncompressed, unguarded", async () => {
    const response = await create({});
    assert.equal(response.status, 201);
    assert.deepEqual(
      { format: response.body.format, compression: response.body.compression, formula_guard: response.body.formula_guard },
      { format: 'csv', compression: 'none', formula_guard: false },
    );
  });

  test('a chosen format and compression are stored and shown on create, GET and list', async () => {
    const response = await create({ format: 'parquet', compression: 'zstd' });
    assert.equal(response.status, 201);
    assert.equal(response.body.format, 'parquet');
    assert.equal(response.body.compression, 'zstd');
    const [row] = await sql<{ format: string; compression: string }[]>`
      SELECT format, compression FROM analytics_exports WHERE id = ${response.body.id}`;
    assert.deepEqual({ ...row }, { format: 'parquet', compression: 'zstd' });
    const got = await api.request('GET', `/analytics/exports/${response.body.id}/`, { key: user.apiKey });
    assert.deepEqual([got.body.format, got.body.compression, got.body.formula_guard], ['parquet', 'zstd', false]);
    const list = await api.request('GET', '/analytics/exports/?limit=1000', { key: user.apiKey });
    const listed = (list.body as Array<Record<string, unknown>>).find((e) => e.id === response.body.id)!;
    assert.deepEqual([listed.format, listed.compression, listed.formula_guard], ['parquet', 'zstd', false]);

    const guarded = await create({ format: 'csv', compression: 'gzip', formula_guard: true });
    assert.equal(guarded.status, 201);
    assert.deepEqual([guarded.body.format, guarded.body.compression, guarded.body.formula_guard], ['csv', 'gzip', true]);
  });

  test('unknown values are a 400 on their field listing the choices; nothing is stored', async () => {
    const before = await exportCount();
    const format = await create({ format: 'xml' });
    assert.equal(format.status, 400);
    assert.deepEqual(format.body, { format: ['Select a valid choice: one of csv, jsonl, parquet.'] });
    const compression = await create({ compression: 'brotli' });
    assert.equal(compression.status, 400);
    assert.deepEqual(compression.body, { compression: ['Select a valid choice: one of none, gzip, zstd.'] });
    const guard = await create({ formula_guard: 'yes' });
    assert.equal(guard.status, 400);
    assert.deepEqual(Object.keys(guard.body), ['formula_guard']);
    assert.equal(await exportCount(), before);
  });

  test('formula_guard with a format other than csv is a 400 on formula_guard; nothing is stored', async () => {
    const before = await exportCount();
    for (const format of ['jsonl', 'parquet']) {
      const response = await create({ format, formula_guard: true });
      assert.equal(response.status, 400);
      assert.deepEqual(response.body, { formula_guard: [`Only a csv export can guard formulas; this export's format is ${format}.`] });
    }
    assert.equal((await create({ format: 'jsonl', formula_guard: false })).status, 201, 'false is no guard: allowed');
    assert.equal(await exportCount(), before + 1);
  });

  test('the OpenAPI document lists the choices', async () => {
    const response = await api.request('GET', '/openapi.json');
    assert.equal(response.status, 200);
    const schemas = response.body.components.schemas;
    assert.deepEqual(schemas.CreateExport.properties.format.enum, ['csv', 'jsonl', 'parquet']);
    assert.deepEqual(schemas.CreateExport.properties.compression.enum, ['none', 'gzip', 'zstd']);
    assert.equal(schemas.CreateExport.properties.formula_guard.type, 'boolean');
    assert.deepEqual(schemas.AnalyticsExport.properties.format.enum, ['csv', 'jsonl', 'parquet']);
  });
});
