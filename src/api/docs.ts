import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';
import type { ApiEnv } from '../http/env';

/**
 * GET /docs: Swagger UI (the swagger-ui-dist package) rendering /openapi.json, with its script,
 * stylesheet and icon served by this service from the installed package under /docs/assets/.
 * Nothing is loaded from any other host: the validator badge (Swagger UI's one default request
 * elsewhere) is off, and the page's Content-Security-Policy lets the browser fetch from this
 * origin only. "Try it out" sends its requests to the origin that served the page.
 */

const ASSETS_PATH = '/docs/assets';

/** Served by name from swagger-ui-dist's folder; nothing else of it is reachable. */
const PACKAGE_ASSETS: Record<string, string> = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

/**
 * Starts Swagger UI. The document's `servers` are replaced by the page's own origin, so that
 * "Try it out" calls the service that served the page, whatever address the client reached it by.
 */
const START_SCRIPT = `fetch('/openapi.json')
  .then((response) => response.json())
  .then((openapi) => {
    openapi.servers = [{ url: window.location.origin, description: 'This service' }];
    window.ui = SwaggerUIBundle({
      spec: openapi,
      dom_id: '#swagger-ui',
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: 'BaseLayout',
    });
  })
  .catch((error) => {
    document.getElementById('swagger-ui').textContent = 'Could not load /openapi.json: ' + error;
  });
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Analytics Export API</title>
<link rel="stylesheet" href="${ASSETS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="${ASSETS_PATH}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="${ASSETS_PATH}/start.js"></script>
</body>
</html>
`;

/**
 * Same origin only. Swagger UI sets inline style attributes and shows images as data: URLs;
 * scripts come only from the files above (no inline script, no eval).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  etag: string;
}

function asset(body: Uint8Array<ArrayBuffer>, contentType: string): Asset {
  return { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
}

/** Read once, on the first request for the docs: the bundle is 1.7 MB that most processes never serve. */
function loadAssets(): Map<string, Asset> {
  const folder = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const assets = new Map<string, Asset>();
  for (const [name, contentType] of Object.entries(PACKAGE_ASSETS))
    assets.set(name, asset(new Uint8Array(readFileSync(path.join(folder, name))), contentType));
  assets.set('start.js', asset(new TextEncoder().encode(START_SCRIPT), 'text/javascript; charset=utf-8'));
  return assets;
}

export function docsRoutes(): Hono<ApiEnv> {
  let assets: Map<string, Asset> | undefined;
  return new Hono<ApiEnv>({ strict: false })
    .get('/docs', (c) => {
      c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
      return c.html(PAGE);
    })
    .get(`${ASSETS_PATH}/:name`, (c) => {
      assets ??= loadAssets();
      const found = assets.get(c.req.param('name'));
      if (!found) return c.json({ detail: 'Not found.' }, 404);
      // Revalidated on each use (the names carry no version); the ETag makes that a 304.
      const headers = { 'Content-Type': found.contentType, 'Cache-Control': 'no-cache', ETag: found.etag };
      if (c.req.header('if-none-match') === found.etag) return c.body(null, 304, headers);
      return c.body(found.body, 200, headers);
    });
}
