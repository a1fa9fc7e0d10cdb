import http from 'node:http';

/**
 * The bench's own requests to the API: node's http with keep-alive, which costs the machine
 * about half the CPU of fetch (undici) per request. The bench shares the 2 cores with what it
 * measures, so its own overhead is kept small.
 */

/**
 * A keep-alive agent whose idle sockets close before the server's keep-alive timeout (5 s) could
 * close them under a request being sent on them.
 */
export function keepAliveAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 4000 });
}

const agent = keepAliveAgent();

export function requestJson(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        } catch (error) {
          reject(error);
        }
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export function closeHttpClient(): void {
  agent.destroy();
}
