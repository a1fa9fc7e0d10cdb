import type { IncomingMessage } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ApiError } from '../errors';

/** Request bodies: at most 1 MiB, JSON only, and a JSON object at the top. */

export const MAX_BODY_BYTES = 1024 * 1024;

const limit = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) => c.json({ detail: `Request body is larger than ${MAX_BODY_BYTES} bytes (1 MiB).` }, 413),
});

/** The methods whose bodies the API reads. */
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The limit for the methods whose bodies the API reads. Other methods skip it: bodyLimit looks at
 * `c.req.raw.body`, which makes @hono/node-server build a full fetch Request (an undici Request,
 * an AbortController) for every GET, about 6% of the API's time under load (npm run bench).
 */
export const limitBody: MiddlewareHandler = (c, next) => (WITH_BODY.has(c.req.method) ? limit(c, next) : next());

/**
 * A body the API answered without reading (401, 405, 415, a 413 on its Content-Length) is read
 * to its end before the response goes out, up to this many bytes and this long, so that the
 * client's keep-alive connection stays usable for its next request.
 */
export const MAX_DRAIN_BYTES = 16 * 1024 * 1024;
const DRAIN_TIMEOUT_MS = 2000;

/**
 * Answers with `Connection: close` when the request's body is left unread: one too large to
 * drain, one that did not arrive in time, or one already partly read (a 413 on a chunked body).
 * Otherwise the next request on that connection would hit a socket the server closes after the
 * response ("socket hang up").
 */
export const settleUnreadBody: MiddlewareHandler = async (c, next) => {
  await next();
  // app.request() (tests) has no socket, and so nothing to settle. Bodiless requests (GETs) are
  // let through before c.req.raw.body is touched: that would build a full fetch Request.
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  if (!incoming || incoming.readableEnded || !hasBody(incoming)) return;
  const body = c.req.raw.body;
  const declared = Number(incoming.headers['content-length'] ?? 0);
  if (body && !body.locked && declared <= MAX_DRAIN_BYTES && (await drained(body))) return;
  c.res.headers.set('Connection', 'close');
};

function hasBody(incoming: IncomingMessage): boolean {
  // Tests stand in a bare { socket } for the request when they call the app without a server.
  const headers = incoming.headers ?? {};
  const length = headers['content-length'];
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
}

/** Reads the body to its end and discards it: true when it ended within the byte and time bounds. */
async function drained(body: ReadableStream<Uint8Array>): Promise<boolean> {
  const reader = body.getReader();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timed out'>((resolve) => (timer = setTimeout(() => resolve('timed out'), DRAIN_TIMEOUT_MS)));
  let bytes = 0;
  try {
    for (;;) {
      const read = reader.read();
      // A read still pending when the lock is released rejects; nobody waits for it then.
      read.catch(() => undefined);
      const result = await Promise.race([read, timedOut]);
      if (result === 'timed out') return false;
      if (result.done) return true;
      bytes += result.value.byteLength;
      if (bytes > MAX_DRAIN_BYTES) return false;
    }
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    // Released, never cancelled: cancelling would destroy the socket before the response is written.
    reader.releaseLock();
  }
}

function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || /^application\/[\w.+-]+\+json$/.test(mediaType);
}

/** The media type and the charset parameter (lower case, unquoted) of a Content-Type. */
function parseContentType(contentType: string): { mediaType: string; charset: string | undefined } {
  const [mediaType, ...parameters] = contentType.split(';');
  const charset = parameters
    .map((parameter) => /^\s*charset\s*=\s*"?([^";\s]*)"?\s*$/i.exec(parameter)?.[1])
    .find((value) => value !== undefined);
  return { mediaType: mediaType!.trim().toLowerCase(), charset: charset?.toLowerCase() };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The request's body as a JSON object: 415 when it is not JSON or declares a charset other than
 * UTF-8 (JSON is UTF-8, RFC 8259), 400 when its bytes are not UTF-8, when it is malformed or not
 * an object. Bytes are never replaced: a body that is not UTF-8 is refused, not stored as U+FFFD.
 */
export async function readJsonObject(c: Context): Promise<Record<string, unknown>> {
  const contentType = c.req.header('content-type');
  if (!contentType) throw new ApiError(415, { detail: 'Missing Content-Type. Send application/json.' });
  const { mediaType, charset } = parseContentType(contentType);
  if (!isJsonMediaType(mediaType)) {
    throw new ApiError(415, { detail: `Unsupported media type "${contentType}" in request. Send application/json.` });
  }
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new ApiError(415, { detail: `Unsupported charset "${charset}" in request. Send JSON in UTF-8 (charset=utf-8, or no charset).` });
  }
  const bytes = await c.req.arrayBuffer();
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new ApiError(400, { detail: 'Request body is not valid UTF-8.' });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, { detail: `JSON parse error - ${error instanceof Error ? error.message : 'malformed JSON'}` });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, { detail: 'Invalid data. Expected a JSON object.' });
  }
  return body as Record<string, unknown>;
}
