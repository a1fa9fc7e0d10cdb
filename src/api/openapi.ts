import { toJsonSchema } from '@valibot/to-json-schema';
import type * as v from 'valibot';
import { CreateExportBody, ExportResource, ListExportsQuery } from './exports/schemas';
import { ListQueriesQuery, QueryBody, QueryPatchBody, QueryResource } from './queries/schemas';

/**
 * The OpenAPI 3.1 document, generated from the same valibot schemas that validate requests
 * (OpenAPI 3.1 schemas are JSON Schema 2020-12). Checks that JSON Schema cannot say (e.g. end
 * after start) are described in the operations' text instead.
 */

export function jsonSchemaOf(schema: v.GenericSchema): Record<string, unknown> {
  const { $schema: _dialect, ...json } = toJsonSchema(schema, {
    target: 'draft-2020-12',
    errorMode: 'ignore',
    typeMode: 'input',
  }) as Record<string, unknown>;
  return json;
}

/** Query-string parameters from an object schema of strings. */
function parametersOf(schema: v.ObjectSchema<v.ObjectEntries, undefined>): unknown[] {
  const json = jsonSchemaOf(schema) as { properties: Record<string, Record<string, unknown>> };
  return Object.entries(json.properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return { name, in: 'query', required: false, ...(description ? { description } : {}), schema: rest };
  });
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const idParameter = (what: string) => ({
  name: 'id',
  in: 'path',
  required: true,
  description: `The ${what}'s id.`,
  schema: { type: 'string', format: 'uuid' },
});
const linkHeader = {
  Link: { description: 'rel="next" and rel="prev" links to the neighbouring pages (RFC 8288).', schema: { type: 'string' } },
};

const errors = {
  400: {
    description: 'Bad input: `{"field": ["message"]}` for fields, `{"detail": "..."}` for a malformed body.',
    ...json(ref('FieldErrors')),
  },
  401: { description: 'No API key, or an unknown or revoked one.', ...json(ref('Detail')) },
  403: {
    description:
      'The caller sees the object but does not reach every customer and partner in its scopes, which changing, deleting or cancelling it needs.',
    ...json(ref('Detail')),
  },
  404: { description: 'No such object, or one outside the caller’s scopes.', ...json(ref('Detail')) },
  413: { description: 'Body over 1 MiB.', ...json(ref('Detail')) },
  415: { description: 'Body is not JSON, or not in UTF-8.', ...json(ref('Detail')) },
};
const pick = (...codes: (keyof typeof errors)[]) => Object.fromEntries(codes.map((code) => [code, errors[code]]));

const info = {
  title: 'Analytics Export API',
  version: '1.0.0',
  description:
    'Analytics Exports stream all results of an Analytics Query into a CSV file to download. ' +
    'Authenticate with `Authorization: Bearer <key>` (or `Token <key>`). Timestamps are ISO 8601 UTC with microseconds. ' +
    'Objects outside the caller’s scopes answer 404.',
};

/** The shared parts: security scheme, the resources' schemas, the error bodies. */
const components = () => ({
  securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key.' } },
  schemas: {
    CreateExport: jsonSchemaOf(CreateExportBody),
    AnalyticsExport: jsonSchemaOf(ExportResource),
    Query: jsonSchemaOf(QueryBody),
    QueryPatch: jsonSchemaOf(QueryPatchBody),
    AnalyticsQuery: jsonSchemaOf(QueryResource),
    Detail: { type: 'object', properties: { detail: { type: 'string' } }, required: ['detail'] },
    FieldErrors: {
      type: 'object',
      additionalProperties: { type: 'array', items: { type: 'string' } },
      description: 'Field name -> messages; or {"detail": "..."} when the body itself is malformed.',
    },
  },
});

/** /analytics/export and /analytics/exports/...: create, list, retrieve, delete, cancel. */
const exportPaths = () => ({
  '/analytics/export': {
    post: {
      operationId: 'createAnalyticsExport',
      summary: 'Create an Analytics Export',
      description:
        'Schedules the export; it starts `queued`. Read-only fields in the body are ignored. ' +
        'Extension: an `Idempotency-Key` header makes retries safe: the same key and body within 24 hours answer 200 with the same export; the same key with another body answers 409.',
      parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 } }],
      requestBody: { required: true, ...json(ref('CreateExport')) },
      responses: {
        201: { description: 'Created.', ...json(ref('AnalyticsExport')) },
        200: { description: 'A replay of an earlier request with the same Idempotency-Key and body.', ...json(ref('AnalyticsExport')) },
        409: { description: 'The Idempotency-Key was used with another body.', ...json(ref('Detail')) },
        ...pick(400, 401, 413, 415),
      },
    },
  },
  '/analytics/exports/': {
    get: {
      operationId: 'listAnalyticsExports',
      summary: 'List Analytics Exports',
      description: 'The caller’s visible exports, newest first. No `url` in lists.',
      parameters: parametersOf(ListExportsQuery),
      responses: {
        200: { description: 'A page of exports.', headers: linkHeader, ...json({ type: 'array', items: ref('AnalyticsExport') }) },
        ...pick(400, 401),
      },
    },
  },
  '/analytics/exports/{id}/': {
    parameters: [idParameter('export')],
    get: {
      operationId: 'retrieveAnalyticsExport',
      summary: 'Retrieve an Analytics Export',
      description:
        'When `complete`, `url` is a download link signed on this request and valid for 1 hour (`url_expires`), and `files` lists the ' +
        'export’s files in row order, each with its own link signed for the same hour. A single-file export’s `url` is its file; ' +
        'an export written as several files (larger than EXPORT_MAX_FILE_MIB) has a `url` to a JSON manifest of its files, so that ' +
        'a client reading `url` can never take the first file for the whole export.',
      responses: { 200: { description: 'The export.', ...json(ref('AnalyticsExport')) }, ...pick(401, 404) },
    },
    delete: {
      operationId: 'deleteAnalyticsExport',
      summary: 'Delete an Analytics Export',
      description: 'Cancels it first if it is running, and deletes the file so existing links stop working.',
      responses: { 204: { description: 'Deleted.' }, ...pick(401, 403, 404) },
    },
  },
  '/analytics/exports/{id}/cancel/': {
    parameters: [idParameter('export')],
    post: {
      operationId: 'cancelAnalyticsExport',
      summary: 'Cancel an Analytics Export (extension)',
      description:
        'A queued export fails at once with errors.code "cancelled" (200); a running one is asked to stop (202) and fails shortly after.',
      responses: {
        200: { description: 'Cancelled.', ...json(ref('AnalyticsExport')) },
        202: { description: 'Cancellation requested.', ...json(ref('AnalyticsExport')) },
        409: { description: 'Already complete or failed.', ...json(ref('Detail')) },
        ...pick(401, 403, 404),
      },
    },
  },
});

/** /analytics/queries/...: list, create, retrieve, replace, patch, delete. */
const queryPaths = () => ({
  '/analytics/queries/': {
    get: {
      operationId: 'listAnalyticsQueries',
      summary: 'List Analytics Queries',
      parameters: parametersOf(ListQueriesQuery),
      responses: {
        200: { description: 'A page of queries.', headers: linkHeader, ...json({ type: 'array', items: ref('AnalyticsQuery') }) },
        ...pick(400, 401),
      },
    },
    post: {
      operationId: 'createAnalyticsQuery',
      summary: 'Create an Analytics Query',
      description:
        '`end` must be after `start`; `aggregation` is required unless `interval` is raw and must be null when raw; metrics come from the catalogue; devices and spaces must be visible to the caller; `timezone` is an IANA name.',
      requestBody: { required: true, ...json(ref('Query')) },
      responses: { 201: { description: 'Created.', ...json(ref('AnalyticsQuery')) }, ...pick(400, 401, 413, 415) },
    },
  },
  '/analytics/queries/{id}/': {
    parameters: [idParameter('query')],
    get: {
      operationId: 'retrieveAnalyticsQuery',
      summary: 'Retrieve an Analytics Query',
      responses: { 200: { description: 'The query.', ...json(ref('AnalyticsQuery')) }, ...pick(401, 404) },
    },
    put: {
      operationId: 'replaceAnalyticsQuery',
      summary: 'Update an Analytics Query',
      description: 'The required fields must be given; optional fields left out keep their values.',
      requestBody: { required: true, ...json(ref('Query')) },
      responses: { 200: { description: 'Updated.', ...json(ref('AnalyticsQuery')) }, ...pick(400, 401, 403, 404, 413, 415) },
    },
    patch: {
      operationId: 'patchAnalyticsQuery',
      summary: 'Partially update an Analytics Query',
      requestBody: { required: true, ...json(ref('QueryPatch')) },
      responses: { 200: { description: 'Updated.', ...json(ref('AnalyticsQuery')) }, ...pick(400, 401, 403, 404, 413, 415) },
    },
    delete: {
      operationId: 'deleteAnalyticsQuery',
      summary: 'Delete an Analytics Query',
      responses: {
        204: { description: 'Deleted.' },
        409: { description: 'Exports refer to it.', ...json(ref('Detail')) },
        ...pick(401, 403, 404),
      },
    },
  },
});

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info,
    security: [{ apiKey: [] }],
    components: components(),
    paths: { ...exportPaths(), ...queryPaths() },
  };
}
