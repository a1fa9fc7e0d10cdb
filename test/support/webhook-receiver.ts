import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';

/** A request the receiver got: its path, its headers and its body as sent. */
export interface ReceivedWebhook {
  path: string;
  headers: Record<string, string>;
  body: string;
  /** When it arrived (Date.now()). */
  at: number;
}

export interface WebhookReceiver {
  /** http://127.0.0.1:PORT */
  url: string;
  received: ReceivedWebhook[];
  /** What the next requests are answered (status codes, in order; 0: no answer at all); 200 once they run out. */
  answer(...statuses: number[]): void;
}

/**
 * A local HTTP server standing for a client's webhook endpoint: it records every request and
 * answers the statuses it is told to (a 3xx with a Location to /redirected), or never answers.
 * Closed after the file.
 */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const answers: number[] = [];
  const server = http.createServer((req, res) => {
    const at = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers[name] = value;
      received.push({ path: req.url ?? '', headers, body: Buffer.concat(chunks).toString('utf8'), at });
      const status = answers.shift() ?? 200;
      if (status === 0) return;
      res.writeHead(status, status >= 300 && status < 400 ? { location: '/redirected' } : {});
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    answer: (...statuses) => answers.push(...statuses),
  };
}
