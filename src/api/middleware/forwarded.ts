import type { MiddlewareHandler } from 'hono';

/**
 * TRUST_PROXY: behind a reverse proxy, the request's URL becomes the one the client sent to the
 * proxy: the scheme from X-Forwarded-Proto, the host and port from X-Forwarded-Host. Everything
 * the API builds from `c.req.url` (the Link headers of lists) then points where the client can
 * follow it. Without TRUST_PROXY the app does not install this: any client could send the headers.
 */
export const useForwardedUrl: MiddlewareHandler = async (c, next) => {
  const url = forwardedUrl(c.req.url, c.req.header('x-forwarded-proto'), c.req.header('x-forwarded-host'));
  // HonoRequest's url is a getter on the raw request; this request's own value shadows it.
  if (url !== c.req.url) Object.defineProperty(c.req, 'url', { value: url });
  await next();
};

const PROTOCOLS = new Set(['http', 'https']);
/** A host name or an IPv4 or [IPv6] address, with an optional port: nothing else goes into a URL. */
const HOST = /^(?<hostname>[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(?<port>\d{1,5}))?$/i;

/**
 * The URL with the forwarded scheme and host. A proxy chain lists one value per proxy: the first
 * is what the client used. A value that is not a plain scheme or host is ignored.
 */
export function forwardedUrl(requestUrl: string, proto: string | undefined, host: string | undefined): string {
  const url = new URL(requestUrl);
  const scheme = first(proto)?.toLowerCase();
  if (scheme !== undefined && PROTOCOLS.has(scheme)) url.protocol = `${scheme}:`;
  const forwardedHost = HOST.exec(first(host) ?? '')?.groups;
  if (forwardedHost && Number(forwardedHost.port ?? 0) <= 65_535) {
    url.hostname = forwardedHost.hostname!;
    // The forwarded host's port, or none (the scheme's default): never the service's own port.
    url.port = forwardedHost.port ?? '';
  }
  return url.toString();
}

function first(header: string | undefined): string | undefined {
  const value = header?.split(',')[0]?.trim();
  return value === '' ? undefined : value;
}
