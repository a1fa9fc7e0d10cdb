import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileAnalyticsSelect, ExportQueryError, parseExportDefinition, type ExportQuery } from '../../src/exports/compile-query';

/**
 * The compiler's text, without a database: whatever a definition holds, its values only ever
 * appear inside string literals, escaped so that they read back exactly. (test/export/
 * compile-query.test.ts runs compiled SELECTs for real.)
 */

/** A string literal as pg.escapeLiteral writes it: '...' with quotes doubled, or  E'...' when it holds a backslash. */
const LITERAL = /(?: E)?'(?:[^'\\]|''|\\\\)*'/g;

function literals(sql: string): string[] {
  return [...sql.matchAll(LITERAL)].map(([text]) => {
    const escapedBackslashes = text.startsWith(' E');
    const body = text.slice(escapedBackslashes ? 3 : 1, -1).replace(/''/g, "'");
    return escapedBackslashes ? body.replace(/\\\\/g, '\\') : body;
  });
}

/** The SELECT with every literal replaced by one placeholder: what values cannot change. */
const skeleton = (sql: string) => sql.replace(LITERAL, '$literal');

const uuid = fc.uuid();
const metric = fc
  .string({
    unit: fc.oneof(
      fc.constantFrom("'", "''", '\\', '$$', ';', '"', '--', '/*', '\n', 'E', ' '),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
    ),
    minLength: 1,
    maxLength: 20,
  })
  .filter((s) => !s.includes('\0') && s.length <= 64);
const interval = fc.constantFrom<ExportQuery['interval']>('raw', '1m', '5m', '15m', '1h', '1d');
const query = fc
  .record({
    createdBy: uuid,
    customerScopes: fc.array(uuid, { maxLength: 3 }),
    partnerScopes: fc.array(uuid, { maxLength: 3 }),
    metrics: fc.uniqueArray(metric, { minLength: 1, maxLength: 5 }),
    devices: fc.array(uuid, { maxLength: 3 }),
    spaces: fc.array(uuid, { maxLength: 3 }),
    interval,
    aggregation: fc.constantFrom<NonNullable<ExportQuery['aggregation']>>('avg', 'min', 'max', 'sum', 'count'),
    timezone: fc.constantFrom('UTC', 'Europe/Berlin', 'America/St_Johns'),
  })
  .map(
    (q): ExportQuery => ({
      ...q,
      aggregation: q.interval === 'raw' ? null : q.aggregation,
      start: '2026-01-01T00:00:00+00:00',
      end: '2026-01-02T00:00:00+00:00',
    }),
  );

describe('compileAnalyticsSelect', () => {
  test('values change only the literals: the SELECT around them is the same as for plain values', () => {
    fc.assert(
      fc.property(query, (q) => {
        const plain = { ...q, metrics: q.metrics.map((_m, i) => `metric${i}`) };
        assert.equal(skeleton(compileAnalyticsSelect(q)), skeleton(compileAnalyticsSelect(plain)));
      }),
      { numRuns: 500 },
    );
  });

  test('every metric, id and scope reads back exactly from its literal', () => {
    fc.assert(
      fc.property(query, (q) => {
        const found = literals(compileAnalyticsSelect(q));
        for (const value of [
          ...q.metrics,
          q.createdBy,
          ...q.customerScopes,
          ...q.partnerScopes,
          ...q.devices,
          ...q.spaces,
          q.start,
          q.end,
        ]) {
          assert.ok(found.includes(value), `${JSON.stringify(value)} is one of the literals`);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('is pure: one definition, one text', () => {
    fc.assert(fc.property(query, (q) => assert.equal(compileAnalyticsSelect(q), compileAnalyticsSelect(structuredClone(q)))));
  });
});

describe('parseExportDefinition', () => {
  const stored = {
    created_by: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
    customer_scopes: [],
    partner_scopes: [],
    metrics: ['temperature'],
    devices: [],
    spaces: [],
    start: '2026-01-01T00:00:00+00:00',
    end: '2026-01-02T00:00:00+00:00',
    interval: 'raw',
    aggregation: null,
    timezone: 'UTC',
    unknown_metrics: [],
    timezone_known: true,
  };
  const parse = (changes: Record<string, unknown>) => parseExportDefinition(JSON.stringify({ ...stored, ...changes }));

  test('a stored definition becomes the compiler input', () => {
    assert.deepEqual(parse({}), {
      createdBy: stored.created_by,
      customerScopes: [],
      partnerScopes: [],
      metrics: ['temperature'],
      devices: [],
      spaces: [],
      start: stored.start,
      end: stored.end,
      interval: 'raw',
      aggregation: null,
      timezone: 'UTC',
    });
  });

  test('refuses what cannot be compiled, with a message naming the problem', () => {
    assert.throws(() => parseExportDefinition(null), { name: 'ExportQueryError', message: 'the export has no query definition' });
    assert.throws(() => parse({ unknown_metrics: ['gone'] }), /names metrics not in the catalogue: gone/);
    assert.throws(() => parse({ timezone_known: false, timezone: 'Mars/Base' }), /time zone Mars\/Base is unknown/);
    assert.throws(() => parse({ interval: '1h' }), /needs an aggregation exactly when its interval is not raw/);
    assert.throws(() => parse({ metrics: ['a\0b'] }), /metrics\.0 contains NUL/);
    assert.throws(() => parse({ devices: ["x'; DROP TABLE devices; --"] }), /devices\.0 is not a uuid/);
    assert.throws(() => parse({ start: "2026-01-01'" }), /start is not a finite timestamp/);
    assert.throws(() => parse({ metrics: [] }), ExportQueryError);
  });
});
