import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/logger';
import { createTestDatabase } from '../support/database';
import { createTestBucket } from '../support/s3';
import { spawnWorker, waitForLog, workerEnvironment } from '../support/worker';

/**
 * LOG_FORMAT: JSON when stdout is not a terminal, pino-pretty's one-line format on a terminal or
 * with LOG_FORMAT=pretty, JSON with LOG_FORMAT=json whatever stdout is. The built service (the
 * esbuild bundle bin/service runs) is checked too: pino-pretty must load from it.
 */

const database = await createTestDatabase();
const bucket = await createTestBucket();

/** A stream that records what is written, claiming to be a terminal or not. */
function capture(isTTY: boolean): Writable & { isTTY: boolean; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return Object.assign(stream, { isTTY, text: () => chunks.join('') });
}

/** pino-pretty's line: [ISO time in UTC] LEVEL: message {fields as JSON}. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's colour codes (ESC [) are what this test reads
const PRETTY_LINE = /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] (?:\u001b\[\d+m)?INFO(?:\u001b\[39m)?: (?:\u001b\[\d+m)?export complete/;

describe('the log format', () => {
  test('on a terminal: one pretty line per event (coloured); LOG_FORMAT=json forces JSON there', () => {
    const terminal = capture(true);
    createLogger('info', undefined, terminal).info({ export_id: 'e1', rows: 3 }, 'export complete');
    const lines = terminal.text().trimEnd().split('\n');
    assert.equal(lines.length, 1, terminal.text());
    assert.match(lines[0]!, PRETTY_LINE);
    assert.match(lines[0]!, /"export_id":"e1","rows":3/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a colour code begins with ESC [
    assert.match(lines[0]!, /\u001b\[/, 'coloured on a terminal');
    assert.throws(() => JSON.parse(lines[0]!));

    const forced = capture(true);
    createLogger('info', 'json', forced).info({ export_id: 'e1' }, 'export complete');
    const line = JSON.parse(forced.text());
    assert.equal(line.msg, 'export complete');
    assert.equal(line.export_id, 'e1');
    assert.equal(line.service, 'analytics-export');
  });

  test('not on a terminal: JSON; LOG_FORMAT=pretty gives the pretty line there, without colours', () => {
    const pipe = capture(false);
    createLogger('info', undefined, pipe).info({ export_id: 'e2' }, 'export complete');
    assert.equal(JSON.parse(pipe.text()).export_id, 'e2');

    const forced = capture(false);
    createLogger('info', 'pretty', forced).info({ export_id: 'e2' }, 'export complete');
    assert.match(forced.text(), PRETTY_LINE);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a colour code begins with ESC [
    assert.doesNotMatch(forced.text(), /\u001b\[/, 'no escape codes in a pipe or a file');
  });

  test('the built service: JSON on a pipe by default, pretty lines with LOG_FORMAT=pretty', async () => {
    for (const [format, parses] of [
      [undefined, true],
      ['json', true],
      ['pretty', false],
    ] as const) {
      const worker = spawnWorker(workerEnvironment(database, bucket, format ? { LOG_FORMAT: format } : {}));
      // spawnWorker keeps a line that is not JSON as { msg: line }.
      const line = await waitForLog(worker, (l) => String(l.msg).includes('health and metrics server listening'), 60_000);
      if (parses) {
        assert.equal(line.msg, 'health and metrics server listening', `${format}: JSON`);
        assert.match(String(line.url), /^http:\/\//);
      } else {
        assert.match(String(line.msg), /^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] INFO: health and metrics server listening \{.*"url":"http:\/\//);
      }
      worker.kill('SIGTERM');
      assert.deepEqual(await worker.exited, { code: 0, signal: null }, String(format));
    }
  });
});
