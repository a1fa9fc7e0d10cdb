import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { escapeLike } from '../../src/db/statements/fragments';
import { hashRequest } from '../../src/exports/create-export';

/** Pure helpers of the statements and of the create workflow, without a database. */

/** LIKE's matching, written out: % any run, _ any one character, \ escapes the next. */
function like(value: string, pattern: string): boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\') source += (pattern[++i] ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (ch === '%') source += '[\\s\\S]*';
    else if (ch === '_') source += '[\\s\\S]';
    else source += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'u').test(value);
}

describe('escapeLike', () => {
  const text = fc.string({ unit: fc.constantFrom('%', '_', '\\', 'a', 'b', ' '), maxLength: 12 });

  test('a name contains the needle exactly when its escaped pattern matches', () => {
    fc.assert(
      fc.property(text, text, (name, needle) => {
        assert.equal(like(name, `%${escapeLike(needle)}%`), name.includes(needle));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('hashRequest', () => {
  const body = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 });

  test('the order of keys does not change the hash', () => {
    fc.assert(
      fc.property(body, (value) => {
        const reversed = Object.fromEntries(Object.entries(value).reverse());
        assert.equal(hashRequest(reversed), hashRequest(value));
      }),
    );
  });

  test('another body, another hash', () => {
    assert.notEqual(hashRequest({ name: 'a', query: 'q' }), hashRequest({ name: 'b', query: 'q' }));
    assert.match(hashRequest({}), /^[0-9a-f]{64}$/);
  });
});
