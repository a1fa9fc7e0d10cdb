import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import pg from 'pg';
import { to as libraryCopyTo } from 'pg-copy-streams';
import { copyOut } from '../../src/worker/copy-out';
import { testEnvironment } from '../support/environment';

/**
 * The worker's COPY TO stream (src/worker/copy-out.ts) gives exactly what pg-copy-streams' own
 * stream gives, byte for byte and row count for row count, against the real Postgres: through a
 * relay that cuts the server's bytes into pieces of 1 to 97 bytes, so that message headers and
 * rows are split at every position, and directly, where rows of 300 kB span many socket reads.
 * Errors in the middle of a COPY and notices between its rows behave as the library's do, and
 * the connection is usable afterwards.
 */

const ROWS = `SELECT i, repeat(md5(i::text), i % 40) AS text, CASE WHEN i % 5000 = 0 THEN repeat('x', 300000) END AS big,
                    i::float8 / 7 AS value, now() - i * interval '1 second' AS ts
               FROM generate_series(1, 20000) AS i`;

let relay: net.Server;
let relayPort: number;
const sockets = new Set<net.Socket>();

/** Forwards every byte from Postgres to the client in pieces of 1 to 97 bytes. */
function startChoppingRelay(target: URL): Promise<void> {
  relay = net.createServer((client) => {
    const server = net.connect(Number(target.port), target.hostname);
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(server);
    let piece = 0;
    server.on('data', (chunk: Buffer) => {
      server.pause();
      const pieces: Buffer[] = [];
      for (let at = 0; at < chunk.length; ) {
        const size = 1 + ((piece++ * 37) % 97);
        pieces.push(chunk.subarray(at, at + size));
        at += size;
      }
      const next = () => {
        const part = pieces.shift();
        if (!part) return server.resume();
        // Each piece is its own write, and the next waits a turn: the client reads them apart.
        client.write(part, () => setImmediate(next));
      };
      next();
    });
    server.on('end', () => client.end());
    client.on('end', () => server.end());
  });
  return new Promise((resolve) => {
    relay.listen(0, '127.0.0.1', () => {
      relayPort = (relay.address() as net.AddressInfo).port;
      resolve();
    });
  });
}

before(() => startChoppingRelay(new URL(testEnvironment.postgresUrl)));
after(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => relay.close(resolve));
});

async function connect(throughRelay: boolean): Promise<pg.Client> {
  const url = new URL(testEnvironment.postgresUrl);
  if (throughRelay) {
    url.hostname = '127.0.0.1';
    url.port = String(relayPort);
  }
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  // The same instant for both runs of a statement that prints now().
  await client.query(`SET TIME ZONE 'UTC'`);
  return client;
}

async function copyWith(
  client: pg.Client,
  make: typeof copyOut,
  statement: string,
): Promise<{ bytes: Buffer; rowCount: number; chunks: number }> {
  // The stream ends at CopyDone; rowCount comes with the CommandComplete after it, which pg has
  // read once the next statement on the connection answers.
  const chunks: Buffer[] = [];
  const stream = client.query(make(statement));
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  );
  await client.query('SELECT 1');
  return { bytes: Buffer.concat(chunks), rowCount: stream.rowCount, chunks: chunks.length };
}

describe('COPY TO stream', () => {
  for (const throughRelay of [true, false]) {
    const how = throughRelay ? 'cut into pieces of 1-97 bytes' : 'as the socket reads it';
    for (const format of ['csv, header', 'binary']) {
      test(`the same bytes and row count as pg-copy-streams (${format}, ${how})`, async () => {
        const client = await connect(throughRelay);
        try {
          await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
          const statement = `COPY (${ROWS}) TO STDOUT WITH (FORMAT ${format})`;
          const ours = await copyWith(client, copyOut, statement);
          const library = await copyWith(client, libraryCopyTo, statement);
          await client.query('COMMIT');
          assert.equal(ours.rowCount, 20_000);
          assert.equal(library.rowCount, 20_000);
          assert.ok(ours.bytes.length > 4_000_000, `${ours.bytes.length} bytes`);
          assert.ok(ours.bytes.equals(library.bytes), 'identical bytes');
          // A chunk holds the rows of one socket read, not one row each.
          if (!throughRelay) assert.ok(ours.chunks < 2_000, `${ours.chunks} chunks`);
          assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
        } finally {
          await client.end();
        }
      });
    }

    test(`an empty COPY, and notices between rows (${how})`, async () => {
      const client = await connect(throughRelay);
      try {
        const empty = await copyWith(client, copyOut, 'COPY (SELECT 1 WHERE false) TO STDOUT');
        assert.equal(empty.rowCount, 0);
        assert.equal(empty.bytes.length, 0);
        await client.query(`CREATE FUNCTION pg_temp.noisy(i int) RETURNS int LANGUAGE plpgsql AS $$
          BEGIN IF i % 100 = 0 THEN RAISE NOTICE 'row %', i; END IF; RETURN i; END $$`);
        const notices: string[] = [];
        client.on('notice', (notice) => notices.push(notice.message ?? ''));
        const statement = 'COPY (SELECT pg_temp.noisy(i) FROM generate_series(1, 1000) AS i) TO STDOUT';
        const noisy = await copyWith(client, copyOut, statement);
        assert.equal(noisy.rowCount, 1000);
        assert.equal(noisy.bytes.toString(), `${Array.from({ length: 1000 }, (_, i) => i + 1).join('\n')}\n`);
      } finally {
        await client.end();
      }
    });

    test(`an error in the middle of a COPY fails the stream with Postgres's error, and the connection still works (${how})`, async () => {
      const client = await connect(throughRelay);
      try {
        const statement = `COPY (SELECT CASE WHEN i = 15000 THEN 1 / 0 ELSE i END, repeat('y', 100) FROM generate_series(1, 20000) AS i) TO STDOUT`;
        const stream = client.query(copyOut(statement));
        const drain = new Writable({ write: (_chunk, _encoding, callback) => callback() });
        await assert.rejects(pipeline(stream, drain), (error: pg.DatabaseError) => {
          assert.equal(error.code, '22012');
          return true;
        });
        assert.equal((await client.query('SELECT 2 AS two')).rows[0].two, 2);
      } finally {
        await client.end();
      }
    });
  }
});
