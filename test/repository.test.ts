import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from './support/built';

/**
 * The repository stands on its own: no file points at documents that live outside it (a clone
 * has only what is committed), and every relative link in the README and docs/ leads to a file
 * of the repository (and, with a #fragment, to one of its headings).
 */

const THIS_FILE = 'test/repository.test.ts';

/** The files a clone has: tracked, plus new ones not ignored (so a file not yet committed is checked too). */
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' })
  .split('\0')
  .filter((file) => file && existsSync(path.join(ROOT, file)));

const TEXT = /\.(md|ts|js|cjs|mjs|json|sql|ya?ml|toml|sh)$|(^|\/)(Dockerfile|run|service)$|^\.[a-z]+ignore$/;
/** Data, not prose: the lockfile and the benchmark's recorded results. */
const DATA = /^package-lock\.json$|^bench\/results[^/]*\.json$/;

/** What a reference to a document outside the repository looks like. */
const OUTSIDE_REFERENCES: [RegExp, string][] = [
  [/\.\.\/shared\b/, 'a path into ../shared'],
  [/\/work\/(shared|prompts)\b/, 'an absolute path into the workplace'],
  [/\bDESIGN\.md\b/, 'DESIGN.md'],
  [/analytics-export\.rst\b/, 'the contract document (describe it in docs/api.md instead)'],
  [/shared with the lead/i, 'a document shared outside the repository'],
];

describe('references outside the repository', () => {
  test('no file names a document that a clone does not have', () => {
    const scanned = files.filter((file) => TEXT.test(file) && !DATA.test(file) && file !== THIS_FILE);
    assert.ok(scanned.includes('README.md') && scanned.includes('src/config.ts') && scanned.some((file) => file.startsWith('drizzle/')));
    const found: string[] = [];
    for (const file of scanned) {
      readFileSync(path.join(ROOT, file), 'utf8')
        .split('\n')
        .forEach((line, index) => {
          for (const [pattern, what] of OUTSIDE_REFERENCES)
            if (pattern.test(line)) found.push(`${file}:${index + 1}: ${what}: ${line.trim()}`);
        });
    }
    assert.deepEqual(found, []);
  });
});

/** The lines of a markdown document with fenced and indented code blocks blanked out. */
function outsideCodeBlocks(markdown: string): string[] {
  const lines: string[] = [];
  let fenced = false;
  let indentedCode = false;
  let previousBlank = true;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      lines.push('');
      continue;
    }
    const blank = line.trim() === '';
    indentedCode = !blank && /^ {4}/.test(line) && (previousBlank || indentedCode);
    lines.push(fenced || indentedCode ? '' : line);
    previousBlank = blank;
  }
  return lines;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const slugs = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of outsideCodeBlocks(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = heading[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    slugs.add(count ? `${base}-${count}` : base);
  }
  return slugs;
}

/** Link targets without a scheme, outside code, with their line numbers. */
function relativeLinks(markdown: string): { line: number; target: string }[] {
  return outsideCodeBlocks(markdown).flatMap((text, index) => {
    const line = text.replace(/`[^`]*`/g, '');
    const targets = [
      ...[...line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1]!),
      ...[...line.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g)].map((match) => match[1]!),
      ...[...line.matchAll(/\b(?:href|src)="([^"]+)"/g)].map((match) => match[1]!),
    ];
    return targets.filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target)).map((target) => ({ line: index + 1, target }));
  });
}

/**
 * What is wrong with the relative links of `file`: a target that is not a file (or a folder with
 * files) of `repository`, or a #fragment that is no heading of the markdown file it names.
 */
function brokenLinks(file: string, markdown: string, repository: Set<string>, read: (file: string) => string): string[] {
  const broken: string[] = [];
  for (const link of relativeLinks(markdown)) {
    const [target, fragment] = link.target.split('#') as [string, string | undefined];
    const resolved = target
      ? path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURIComponent(target))).replace(/\/$/, '')
      : file;
    const where = `${file}:${link.line}: ${link.target}`;
    const exists = repository.has(resolved) || [...repository].some((other) => other.startsWith(`${resolved}/`));
    if (resolved.startsWith('..') || !exists) broken.push(`${where}: no such file in the repository`);
    else if (fragment && resolved.endsWith('.md') && !anchors(read(resolved)).has(fragment))
      broken.push(`${where}: no heading #${fragment} in ${resolved}`);
  }
  return broken;
}

describe('links in the README and docs/', () => {
  test('every relative link leads to a file of the repository, and every #fragment to a heading there', () => {
    const documents = files.filter((file) => file === 'README.md' || /^docs\/[^/]+\.md$/.test(file));
    assert.ok(documents.includes('README.md') && documents.includes('docs/api.md'));
    const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
    assert.ok(documents.flatMap((file) => relativeLinks(read(file))).length >= 10, 'the README and docs link to each other');
    const repository = new Set(files);
    assert.deepEqual(
      documents.flatMap((file) => brokenLinks(file, read(file), repository, read)),
      [],
    );
  });

  test('the check finds a missing file, a path out of the repository and a missing heading, and ignores code', () => {
    // A made-up document and repository, so that the test above cannot pass by seeing nothing.
    const repository = new Set(['README.md', 'docs/api.md', 'docs/cli.md', 'src/api/app.ts']);
    const documents: Record<string, string> = {
      'docs/api.md': '# The HTTP API\n\n## Your first export\n\n## `npm test`: what runs\n',
      'docs/cli.md': [
        '# CLI',
        '[ok](api.md) [ok](api.md#your-first-export) [ok](#cli) [ok](../src/api) [ok](api.md#npm-test-what-runs)',
        '[missing](nothing.md) [outside](../../shared/spec.rst) [no heading](api.md#nowhere) [self](#nowhere-here)',
        '`[in code](in-code.md)` [web](https://example.com/x.md)',
        '',
        '    [indented code](indented.md)',
        '',
        '```',
        '[fenced](fenced.md)',
        '```',
      ].join('\n'),
    };
    assert.deepEqual(
      brokenLinks('docs/cli.md', documents['docs/cli.md']!, repository, (file) => documents[file]!),
      [
        'docs/cli.md:3: nothing.md: no such file in the repository',
        'docs/cli.md:3: ../../shared/spec.rst: no such file in the repository',
        'docs/cli.md:3: api.md#nowhere: no heading #nowhere in docs/api.md',
        'docs/cli.md:3: #nowhere-here: no heading #nowhere-here in docs/cli.md',
      ],
    );
  });
});

describe("the README's folder table", () => {
  test('names every folder of the repository (two levels deep) and no folder it does not have', () => {
    // The folders `git ls-files | cut -d/ -f1-2` shows: a file's first folder, or its first two.
    const folders = new Set(
      files
        .map((file) => file.split('/'))
        .filter((parts) => parts.length >= 2)
        .map((parts) => parts.slice(0, Math.min(2, parts.length - 1)).join('/')),
    );
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('## Folders'), readme.indexOf('\n## ', readme.indexOf('## Folders') + 1));
    const listed = new Set([...table.matchAll(/^\| `([^`]+)\/`/gm)].map((match) => match[1]!));
    assert.ok(listed.size >= 10, 'the table was found');
    // A folder whose files all sit in listed subfolders needs no row of its own.
    const unlisted = [...folders].filter((folder) => !listed.has(folder) && ![...listed].some((name) => name.startsWith(`${folder}/`)));
    assert.deepEqual(unlisted.sort(), [], 'folders missing from the table');
    assert.deepEqual(
      [...listed].filter((name) => !folders.has(name)),
      [],
      'rows for folders the repository does not have',
    );
  });
});
