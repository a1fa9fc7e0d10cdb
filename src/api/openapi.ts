import { DISCOVERY_TAG, discoveryPaths, discoverySchemas } from './discovery/openapi';
import { EXPORTS_TAG, exportPaths, exportSchemas } from './exports/openapi';
import { errorResponses, errorSchemas } from './openapi-parts';
import { QUERIES_TAG, queryPaths, querySchemas } from './queries/openapi';
import { WEBHOOKS_TAG, webhookSecretPaths } from './webhook-secret/openapi';

/**
 * The OpenAPI 3.1 document. Each resource describes its paths and schemas beside its routes
 * (`<resource>/openapi.ts`), generated from the valibot schemas that validate requests (OpenAPI
 * 3.1 schemas are JSON Schema 2020-12); this file puts them together and adds what is common:
 * info, servers, tags, authentication, the error responses, and the paths' trailing-slash twins.
 * Checks that JSON Schema cannot say (e.g. end after start) are described in the operations' text.
 */

export { jsonSchemaOf } from './openapi-parts';

const info = {
  title: 'Analytics Export API',
  version: '1.0.0',
  description:
    'Analytics Exports stream all results of an Analytics Query into a CSV file to download. ' +
    'Authenticate with `Authorization: Bearer <key>` or `Authorization: Token <key>`. Timestamps are ISO 8601 UTC with microseconds. ' +
    'Objects outside the caller’s scopes answer 404. Lists are JSON arrays paged with `limit` and `offset`, with a `Link` header to the next and previous pages. ' +
    'Every path also answers without (or with) its trailing slash.',
  license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
};

/** Relative: the service that serves this document, wherever it is reached. */
const servers = [{ url: '/', description: 'This service.' }];

const ALIASES_TAG = {
  name: 'Trailing-slash aliases',
  description: 'The same operations at each path with its trailing slash removed (or added): the service answers both alike.',
};

const securitySchemes = {
  bearer: { type: 'http', scheme: 'bearer', description: 'An API key: `Authorization: Bearer <key>`.' },
  // "Token" is not a registered HTTP authentication scheme, so tools do not know it as `http`;
  // as an apiKey in the Authorization header they send (and proxies accept) the value as given.
  token: {
    type: 'apiKey',
    in: 'header',
    name: 'Authorization',
    description: 'The same API key as the platform’s clients send it: the header’s value is `Token <key>`.',
  },
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
type PathItem = Record<string, unknown>;

/**
 * Each path at its twin (trailing slash removed, or added to the one path the contract writes
 * without), with the same operations under their own operationIds: clients and proxies that
 * check requests against the document accept both spellings, as the service does.
 */
function withSlashTwins(paths: Record<string, PathItem>): Record<string, PathItem> {
  const twins = Object.entries(paths).map(([path, item]) => {
    const slashed = path.endsWith('/');
    const twin = slashed ? path.slice(0, -1) : `${path}/`;
    const operations = Object.fromEntries(
      Object.entries(item).map(([key, value]) => {
        if (!(METHODS as readonly string[]).includes(key)) return [key, value];
        const operation = value as { operationId: string; summary: string };
        return [
          key,
          {
            ...operation,
            operationId: `${operation.operationId}${slashed ? 'WithoutSlash' : 'WithSlash'}`,
            tags: [ALIASES_TAG.name],
            summary: `${operation.summary} (at ${twin})`,
            description: `The same as ${key.toUpperCase()} ${path}.`,
          },
        ];
      }),
    );
    return [twin, operations] as const;
  });
  return { ...paths, ...Object.fromEntries(twins) };
}

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info,
    servers,
    tags: [EXPORTS_TAG, QUERIES_TAG, DISCOVERY_TAG, WEBHOOKS_TAG, ALIASES_TAG],
    security: [{ bearer: [] }, { token: [] }],
    paths: withSlashTwins({ ...exportPaths(), ...queryPaths(), ...discoveryPaths(), ...webhookSecretPaths() }),
    components: {
      securitySchemes,
      schemas: { ...exportSchemas(), ...querySchemas(), ...discoverySchemas(), ...errorSchemas },
      responses: errorResponses,
    },
  };
}
