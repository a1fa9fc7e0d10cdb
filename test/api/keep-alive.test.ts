import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { createAdaptorServer } from '@hono/node-server';
import { createApp } from '../../src/api/app';
import { createTestApi } from '../support/api';
import { createCustomerWithQuery } from '../support/fixtures';

/**
 * The API over a real socket, as service.ts serves it, with a keep-alive client: a response sent
 * before the request's body was read (401, 405, 413, 415) must leave the client able to send its
 * next request, on the same connection or, when the server closes it, on a new one.
 */

const api = await createTestApi();
const { sql } = api.db;
const { user, queryId } = await createCustomerWithQuery(sql);

const server = createAdaptorServer({ fetch: createApp(api.context).fetch }) as http.Server;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

interface Sent {
  status: number;
  body: any;
  headers: http.IncomingHttpHeaders;
  socket: unknown;
}

function send(
  agent: http.Agent,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer; chunked?: boolean } = {},
): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body && !options.chunked) headers['content-length'] = String(options.body.length);
    const request = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: response.statusCode!,
          body: text ? JSON.parse(text) : undefined,
          headers: response.headers,
          socket: request.socket,
        });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    if (options.body && options.chunked) {
      // Several writes without a Content-Length: Transfer-Encoding chunked.
      for (let i = 0; i < options.body.length; i += 64 * 1024) request.write(options.body.subarray(i, i + 64 * 1024));
      request.end();
    } else request.end(options.body);
  });
}

const jsonBody = (bytes: number) => Buffer.from(JSON.stringify({ name: 'big', query: queryId, notes: 'x'.repeat(bytes) }));
const auth = { authorization: `Bearer ${user.apiKey}` };
const asJson = { 'content-type': 'application/json' };

describe('a response sent before the body was read keeps the client working', () => {
  // What happens to the connection: the unread body is drained and the socket reused, or (a body
  // already partly read by the size check) the response says Connection: close.
  type Connection = 'reused' | 'closed';
  const cases: Array<
    [string, number, Connection, () => [string, string, { headers?: Record<string, string>; body?: Buffer; chunked?: boolean }]]
  > = [
    [
      '413 on a 1.2 MB body with a Content-Length',
      413,
      'reused',
      () => ['POST', '/analytics/export', { headers: { ...auth, ...asJson }, body: jsonBody(1_200_000) }],
    ],
    [
      '413 on a 1.2 MB chunked body',
      413,
      'closed',
      () => ['POST', '/analytics/export', { headers: { ...auth, ...asJson }, body: jsonBody(1_200_000), chunked: true }],
    ],
    [
      '413 on a 12 MB body',
      413,
      'reused',
      () => ['POST', '/analytics/export', { headers: { ...auth, ...asJson }, body: jsonBody(12_000_000) }],
    ],
    ['401 on a 900 KB body', 401, 'reused', () => ['POST', '/analytics/export', { headers: asJson, body: jsonBody(900_000) }]],
    [
      '405 on a 900 KB body',
      405,
      'reused',
      () => ['PUT', '/analytics/export', { headers: { ...auth, ...asJson }, body: jsonBody(900_000) }],
    ],
    [
      '415 on a 900 KB body',
      415,
      'reused',
      () => ['POST', '/analytics/export', { headers: { ...auth, 'content-type': 'text/plain' }, body: jsonBody(900_000) }],
    ],
  ];
  for (const [what, status, connection, request] of cases) {
    test(what, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const [method, path, options] = request();
        const first = await send(agent, method, path, options);
        assert.equal(first.status, status);
        assert.equal(typeof first.body.detail, 'string');
        assert.equal(first.headers.connection === 'close' ? 'closed' : 'reused', connection);
        // The next two requests go over the agent's one socket, or a new one if the server closed it.
        for (let i = 0; i < 2; i++) {
          const next = await send(agent, 'GET', '/analytics/exports/', { headers: auth });
          assert.equal(next.status, 200);
          if (connection === 'reused') assert.equal(next.socket, first.socket, 'the same connection');
        }
        const created = await send(agent, 'POST', '/analytics/export', {
          headers: { ...auth, ...asJson },
          body: Buffer.from(JSON.stringify({ name: 'after', query: queryId })),
        });
        assert.equal(created.status, 201);
      } finally {
        agent.destroy();
      }
    });
  }

  test('a body too large to drain: Connection: close, and the next request goes over a new connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // A client that declares 64 MB, sends 1 MB and waits for the answer.
      const first = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const request = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/analytics/export',
            agent,
            headers: { ...auth, ...asJson, 'content-length': String(64 * 1024 * 1024) },
          },
          resolve,
        );
        request.on('error', reject);
        request.write(Buffer.alloc(1024 * 1024, 'x'));
      });
      assert.equal(first.statusCode, 413);
      assert.equal(first.headers.connection, 'close');
      first.socket.destroy();
      const next = await send(agent, 'GET', '/analytics/exports/', { headers: auth });
      assert.equal(next.status, 200);
    } finally {
      agent.destroy();
    }
  });

  test('a small refused body is read, so the connection stays open and is reused, as after a body the API read', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await send(agent, 'POST', '/analytics/export', { headers: asJson, body: jsonBody(100) });
      assert.equal(first.status, 401);
      assert.notEqual(first.headers.connection, 'close');
      const next = await send(agent, 'GET', '/analytics/exports/', { headers: auth });
      assert.equal(next.status, 200);
      assert.equal(next.socket, first.socket, 'the same connection');
      // A body the API read keeps the connection as well.
      const created = await send(agent, 'POST', '/analytics/export', {
        headers: { ...auth, ...asJson },
        body: Buffer.from(JSON.stringify({ name: 'kept', query: queryId })),
      });
      assert.equal(created.status, 201);
      assert.notEqual(created.headers.connection, 'close');
      assert.equal((await send(agent, 'GET', '/analytics/exports/', { headers: auth })).socket, first.socket, 'still the same connection');
    } finally {
      agent.destroy();
    }
  });
});
