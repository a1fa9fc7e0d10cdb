import {
  errors,
  idParameter,
  json,
  jsonSchemaOf,
  listPage,
  repeatedFilterParameter,
  filterParameter,
  requestSchemaOf,
  schemaRef,
} from '../openapi-parts';
import { pageParameters } from '../pagination';
import { QueryBody, QueryPatchBody, QueryResource } from './schemas';

/** The Analytics Query resource in the OpenAPI document: its schemas, its list's parameters, its paths. */

export const QUERIES_TAG = {
  name: 'Analytics Queries',
  description: 'What an export exports: metrics of devices and spaces over a time range, raw or aggregated.',
};
const tags = [QUERIES_TAG.name];

export const querySchemas = () => ({
  Query: requestSchemaOf(QueryBody),
  QueryPatch: requestSchemaOf(QueryPatchBody),
  AnalyticsQuery: jsonSchemaOf(QueryResource),
});

export const listQueriesParameters = [
  ...pageParameters,
  repeatedFilterParameter('tags', { type: 'string' }, 'Queries carrying every one of these tags.'),
  filterParameter('name__contains', { type: 'string' }, 'Case-insensitive substring of the name (`%` and `_` match themselves).'),
];

const queryResponse = (description: string) => ({ description, ...json(schemaRef('AnalyticsQuery')) });

export const queryPaths = () => ({
  '/analytics/queries/': {
    get: {
      operationId: 'listAnalyticsQueries',
      tags,
      summary: 'List Analytics Queries',
      description: 'The caller’s visible queries, newest first.',
      parameters: listQueriesParameters,
      responses: { 200: listPage('A page of queries.', 'AnalyticsQuery'), ...errors(400) },
    },
    post: {
      operationId: 'createAnalyticsQuery',
      tags,
      summary: 'Create an Analytics Query',
      description:
        '`end` must be after `start`; `aggregation` is required unless `interval` is raw and must be null when raw; metrics come from the catalogue (GET /analytics/metrics/); devices and spaces must be visible to the caller (GET /analytics/devices/, /analytics/spaces/); `timezone` is an IANA name.',
      requestBody: { required: true, ...json(schemaRef('Query')) },
      responses: { 201: queryResponse('Created.'), ...errors(400, 413, 415) },
    },
  },
  '/analytics/queries/{id}/': {
    parameters: [idParameter('query')],
    get: {
      operationId: 'retrieveAnalyticsQuery',
      tags,
      summary: 'Retrieve an Analytics Query',
      responses: { 200: queryResponse('The query.'), ...errors(404) },
    },
    put: {
      operationId: 'replaceAnalyticsQuery',
      tags,
      summary: 'Update an Analytics Query',
      description: 'The required fields must be given; optional fields left out keep their values.',
      requestBody: { required: true, ...json(schemaRef('Query')) },
      responses: { 200: queryResponse('Updated.'), ...errors(400, 403, 404, 413, 415) },
    },
    patch: {
      operationId: 'patchAnalyticsQuery',
      tags,
      summary: 'Partially update an Analytics Query',
      description: 'Changes the fields given; switching `interval` to raw drops the aggregation.',
      requestBody: { required: true, ...json(schemaRef('QueryPatch')) },
      responses: { 200: queryResponse('Updated.'), ...errors(400, 403, 404, 413, 415) },
    },
    delete: {
      operationId: 'deleteAnalyticsQuery',
      tags,
      summary: 'Delete an Analytics Query',
      responses: {
        204: { description: 'Deleted.' },
        409: { description: 'Exports refer to it.', ...json(schemaRef('Detail')) },
        ...errors(403, 404),
      },
    },
  },
});
