import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  contentDisposition,
  downloadFileName,
  EXPORT_PREFIX,
  exportAttemptFolder,
  exportFileKey,
  exportManifestKey,
  exportObjectKey,
  exportSliceFolder,
  exportPrefix,
  parseExportObjectKey,
} from '../../src/exports/naming';

/** Unit tests, no database: the names an export's file gets in the bucket and in a download. */

// Any text a client may send as a name: every code point but lone surrogates (the API refuses those).
const exportName = fc.string({ unit: 'binary', maxLength: 300 });
const uuid = fc.uuid({ version: 4 });

describe('downloadFileName', () => {
  test('is printable ASCII without the characters a header or a file system would choke on, never empty', () => {
    fc.assert(
      fc.property(exportName, (name) => {
        const file = downloadFileName(name);
        assert.match(file, /^[\x20-\x7e]+$/);
        assert.doesNotMatch(file, /["\\/:*?<>|;,]/);
        assert.ok(file.endsWith('.csv'));
        assert.ok(file.length > '.csv'.length, file);
        assert.ok(file.length <= 100 + '.csv'.length);
      }),
    );
  });

  test('keeps a plain name as it is and falls back to "export"', () => {
    assert.equal(downloadFileName('Energy 2024'), 'Energy 2024.csv');
    assert.equal(downloadFileName('Café: a/b'), 'Cafe_ a_b.csv');
    assert.equal(downloadFileName('温度'), 'export.csv');
    assert.equal(downloadFileName('   '), 'export.csv');
  });
});

describe('contentDisposition', () => {
  test('is header-safe ASCII whose UTF-8 file name gives back the name exactly', () => {
    fc.assert(
      fc.property(exportName, (name) => {
        const header = contentDisposition(name);
        assert.match(header, /^[\x20-\x7e]+$/);
        const match = /^attachment; filename="([^"]+)"; filename\*=UTF-8''(\S+)$/.exec(header);
        assert.ok(match, header);
        assert.equal(match[1], downloadFileName(name));
        assert.doesNotMatch(match[2]!, /['()*]/);
        assert.equal(decodeURIComponent(match[2]!), `${name}.csv`);
      }),
    );
  });
});

describe('exportObjectKey', () => {
  test("lies under the export's prefix, plain ASCII, and names its export and attempt", () => {
    fc.assert(
      fc.property(uuid, fc.integer({ min: 1, max: 25 }), uuid, (exportId, attempt, createdBy) => {
        const key = exportObjectKey(exportId, attempt, createdBy);
        assert.ok(key.startsWith(exportPrefix(exportId)), key);
        assert.ok(key.startsWith(EXPORT_PREFIX));
        assert.match(key, /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/);
        assert.ok(key.endsWith(`/user_${createdBy}.csv`));
        assert.deepEqual(parseExportObjectKey(key), { exportId, attempt });
      }),
    );
  });

  test('differs between two attempts with the same number', () => {
    const exportId = randomUUID();
    const createdBy = randomUUID();
    assert.notEqual(exportObjectKey(exportId, 1, createdBy), exportObjectKey(exportId, 1, createdBy));
  });

  test('parses keys older than per-attempt keys, and nothing else', () => {
    const exportId = randomUUID();
    assert.deepEqual(parseExportObjectKey(`${exportPrefix(exportId)}user_x.csv`), { exportId });
    assert.equal(parseExportObjectKey('other/key.csv'), undefined);
    assert.equal(parseExportObjectKey(`${EXPORT_PREFIX}not-a-uuid/1-ab/user_x.csv`), undefined);
  });
});

describe('exportFileKey and exportSliceFolder', () => {
  test("file 1 is the single-file key; the next ones sort after it in row order; a slice's files read as the export attempt's", () => {
    const exportId = randomUUID();
    const createdBy = randomUUID();
    const folder = exportAttemptFolder(exportId, 3);
    const keys = [1, 2, 3, 10, 99_999].map((n) => exportFileKey(folder, createdBy, n));
    assert.equal(keys[0], `${folder}user_${createdBy}.csv`);
    assert.equal(keys[1], `${folder}user_${createdBy}.part-00002.csv`);
    assert.deepEqual([...keys].sort(), keys);
    assert.ok(exportManifestKey(folder, createdBy).startsWith(folder));
    const slice = exportFileKey(exportSliceFolder(exportId, 3, 2, 4), createdBy, 1);
    assert.match(slice, new RegExp(`^anx_export_${exportId}/3-[0-9a-f]{8}/slice-00002-4/user_${createdBy}\\.csv$`));
    assert.deepEqual(parseExportObjectKey(slice), { exportId, attempt: 3 });
  });

  test('file 2 and later are downloaded as <name>.part-0000n.csv', () => {
    assert.match(
      contentDisposition('Energy', 'csv', 2),
      /^attachment; filename="Energy\.part-00002\.csv"; filename\*=UTF-8''Energy\.part-00002\.csv$/,
    );
    assert.equal(contentDisposition('Energy', 'csv', 1), contentDisposition('Energy'));
  });
});
