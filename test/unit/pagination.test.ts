import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import * as v from 'valibot';
import { DEFAULT_LIMIT, linkHeader, listFilter, MAX_LIMIT, pageQuery } from '../../src/api/pagination';

/** The Link header of a list page (RFC 8288), the ?limit/?offset schema and the list filters. */

function parseLinks(header: string): Map<string, URL> {
  const links = new Map<string, URL>();
  for (const part of header.split(', ')) {
    const match = /^<([^>]+)>; rel="(next|prev)"$/.exec(part);
    assert.ok(match, `a well-formed link: ${part}`);
    links.set(match[2]!, new URL(match[1]!));
  }
  return links;
}

test('next follows the page, prev precedes it (never below 0), filters and limit kept', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: MAX_LIMIT }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.boolean(),
      fc.constantFrom('', 'status=complete,failed', 'tags=a&tags=b&name__contains=x%20y'),
      (limit, offset, hasNext, filters) => {
        const url = `http://api.test/analytics/exports/?${filters}${filters ? '&' : ''}limit=7&offset=3`;
        const header = linkHeader(url, { limit, offset }, hasNext);
        if (!hasNext && offset === 0) {
          assert.equal(header, undefined);
          return;
        }
        const links = parseLinks(header!);
        assert.equal(links.has('next'), hasNext);
        assert.equal(links.has('prev'), offset > 0);
        const original = new URLSearchParams(filters);
        for (const [rel, link] of links) {
          assert.equal(link.pathname, '/analytics/exports/');
          assert.equal(link.searchParams.get('limit'), String(limit));
          const expected = rel === 'next' ? offset + limit : Math.max(0, offset - limit);
          assert.equal(link.searchParams.get('offset'), String(expected));
          for (const key of new Set(original.keys())) assert.deepEqual(link.searchParams.getAll(key), original.getAll(key), key);
        }
      },
    ),
  );
});

test('?limit and ?offset: defaults, bounds, whole numbers only', () => {
  const page = v.object(pageQuery);
  assert.deepEqual(v.parse(page, {}), { limit: DEFAULT_LIMIT, offset: 0 });
  assert.deepEqual(v.parse(page, { limit: '1', offset: '999999999' }), { limit: 1, offset: 999_999_999 });
  assert.deepEqual(v.parse(page, { limit: String(MAX_LIMIT) }), { limit: MAX_LIMIT, offset: 0 });
  for (const limit of ['0', String(MAX_LIMIT + 1), '-1', '1.5', ' 5', 'ten', '']) {
    assert.equal(v.safeParse(page, { limit }).success, false, `limit=${JSON.stringify(limit)}`);
  }
});

test('a filter given as ?f=a,b or ?f=a&f=b: the values, blanks dropped', () => {
  assert.equal(listFilter(undefined), undefined);
  assert.equal(listFilter(['', ' , ']), undefined);
  assert.deepEqual(listFilter(['a,b', ' c ', 'd,,']), ['a', 'b', 'c', 'd']);
});
