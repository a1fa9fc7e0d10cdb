import { toJsonSchema } from '@valibot/to-json-schema';
import type * as v from 'valibot';

/**
 * The pieces every resource's part of the OpenAPI document is made of: JSON Schemas from the
 * valibot schemas, references, the shared responses (errors included) and parameters. Each
 * resource describes its own paths and schemas beside its routes (`<resource>/openapi.ts`);
 * src/api/openapi.ts puts them together.
 */

/** A valibot schema as JSON Schema 2020-12 (what OpenAPI 3.1 schemas are). */
export function jsonSchemaOf(schema: v.GenericSchema): Record<string, unknown> {
  const { $schema: _dialect, ...json } = toJsonSchema(schema, {
    target: 'draft-2020-12',
    errorMode: 'ignore',
    typeMode: 'input',
  }) as Record<string, unknown>;
  return json;
}

/**
 * A request body's JSON Schema, with each `default` moved into its description. Generators read
 * a property's `default` as "always present" (openapi-typescript's default settings make such a
 * property required), which is true of a response but not of a request: a client may leave it out.
 */
export function requestSchemaOf(schema: v.GenericSchema): Record<string, unknown> {
  return withDefaultsDescribed(jsonSchemaOf(schema)) as Record<string, unknown>;
}

function withDefaultsDescribed(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withDefaultsDescribed);
  if (typeof node !== 'object' || node === null) return node;
  const { default: fallback, ...rest } = node as Record<string, unknown>;
  const described = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, withDefaultsDescribed(value)]));
  if (fallback === undefined) return described;
  const text = `Default when absent: \`${JSON.stringify(fallback)}\`.`;
  return { ...described, description: typeof rest.description === 'string' ? `${rest.description} ${text}` : text };
}

export const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const responseRef = (name: string) => ({ $ref: `#/components/responses/${name}` });
export const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });

export const idParameter = (what: string) => ({
  name: 'id',
  in: 'path',
  required: true,
  description: `The ${what}'s id.`,
  schema: { type: 'string', format: 'uuid' },
});

/** A filter that takes one value. */
export const filterParameter = (name: string, schema: Record<string, unknown>, description: string) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});

/**
 * A filter that takes several values: repeated (`?status=queued&status=failed`, how generated
 * clients send an array) or comma-separated in one value (`?status=queued,failed`).
 */
export const repeatedFilterParameter = (name: string, items: Record<string, unknown>, description: string) => ({
  name,
  in: 'query',
  required: false,
  description: `${description} Repeat the parameter for several values, or separate them with commas.`,
  style: 'form',
  explode: true,
  schema: { type: 'array', items },
});

/** A 200 list page: a JSON array of `schema` and the Link header. */
export const listPage = (description: string, itemSchema: string) => ({
  description,
  headers: {
    Link: {
      description: 'rel="next" and rel="prev" links to the neighbouring pages (RFC 8288), when they exist.',
      schema: { type: 'string' },
    },
  },
  ...json({ type: 'array', items: schemaRef(itemSchema) }),
});

/** The error bodies and the responses every resource shares, for components. */
export const errorSchemas = {
  Detail: {
    type: 'object',
    properties: { detail: { type: 'string' } },
    required: ['detail'],
    description: 'What went wrong, for a person to read.',
  },
  FieldErrors: {
    type: 'object',
    additionalProperties: { type: 'array', items: { type: 'string' } },
    description: 'Field name -> its problems ("non_field_errors" for the body as a whole).',
  },
  ServerError: {
    type: 'object',
    properties: {
      detail: { type: 'string' },
      request_id: { type: 'string', description: 'The X-Request-Id of the request, under which it was logged.' },
    },
    required: ['detail', 'request_id'],
  },
};

const detail = (description: string) => ({ description, ...json(schemaRef('Detail')) });

export const errorResponses = {
  BadRequest: {
    description:
      'Bad input, nothing stored: `{"field": ["message", ...]}` for fields; `{"detail": "..."}` for a body that is not UTF-8, not JSON or not a JSON object.',
    ...json({ anyOf: [schemaRef('FieldErrors'), schemaRef('Detail')] }),
  },
  Unauthorized: {
    ...detail('No API key, or an unknown or revoked one.'),
    headers: { 'WWW-Authenticate': { description: 'Bearer realm="api"', schema: { type: 'string' } } },
  },
  Forbidden: detail(
    'The caller sees the object but does not reach every customer and partner in its scopes, which changing, deleting or cancelling it needs.',
  ),
  NotFound: detail('No such object, or one outside the caller’s scopes (the answer does not tell them apart).'),
  PayloadTooLarge: detail('Body over 1 MiB.'),
  UnsupportedMediaType: detail('Body is not JSON (application/json), or not in UTF-8.'),
  InternalServerError: {
    description: 'Something unexpected; logged under the request id.',
    ...json(schemaRef('ServerError')),
  },
  ServiceUnavailable: {
    description: 'The database is unavailable for the moment; nothing was changed. Retry after Retry-After seconds.',
    headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer' } } },
    ...json(schemaRef('ServerError')),
  },
};

const errorByStatus = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
} as const;

/**
 * The error responses of an operation: those given, then 500 and 503, which any request under
 * /analytics can meet (401 too: every operation needs a key).
 */
export function errors(...statuses: (keyof typeof errorByStatus)[]) {
  return Object.fromEntries([
    ...[...new Set([401, ...statuses] as const)].sort().map((status) => [status, responseRef(errorByStatus[status])]),
    [500, responseRef('InternalServerError')],
    [503, responseRef('ServiceUnavailable')],
  ]);
}
