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

function isJsonMediaType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  return mediaType === 'application/json' || /^application\/[\w.+-]+\+json$/.test(mediaType);
}

/** The request's body as a JSON object: 415 when it is not JSON, 400 when malformed or not an object. */
export async function readJsonObject(c: Context): Promise<Record<string, unknown>> {
  const contentType = c.req.header('content-type');
  if (!isJsonMediaType(contentType)) {
    throw new ApiError(415, {
      detail: contentType
        ? `Unsupported media type "${contentType}" in request. Send application/json.`
        : 'Missing Content-Type. Send application/json.',
    });
  }
  const text = await c.req.text();
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
