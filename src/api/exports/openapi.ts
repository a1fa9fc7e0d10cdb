import { EXPORT_STATUSES } from '../../exports/status';
import {
  errors,
  filterParameter,
  idParameter,
  json,
  jsonSchemaOf,
  listPage,
  repeatedFilterParameter,
  requestSchemaOf,
  schemaRef,
} from '../openapi-parts';
import { pageParameters } from '../pagination';
import { CreateExportBody, ExportResource, WAIT_MAX_SECONDS } from './schemas';

/** The Analytics Export resource in the OpenAPI document: its schemas, its list's parameters, its paths. */

export const EXPORTS_TAG = { name: 'Analytics Exports', description: 'Export every row of an Analytics Query to a CSV file to download.' };
const tags = [EXPORTS_TAG.name];

export const exportSchemas = () => ({
  CreateExport: requestSchemaOf(CreateExportBody),
  AnalyticsExport: jsonSchemaOf(ExportResource),
});

export const listExportsParameters = [
  ...pageParameters,
  repeatedFilterParameter('status', { type: 'string', enum: [...EXPORT_STATUSES] }, 'Exports in any of these statuses.'),
  repeatedFilterParameter('tags', { type: 'string' }, 'Exports carrying every one of these tags.'),
  filterParameter('name__contains', { type: 'string' }, 'Case-insensitive substring of the name (`%` and `_` match themselves).'),
  filterParameter('query', { type: 'string', format: 'uuid' }, 'Only exports of this Analytics Query.'),
];

const exportResponse = (description: string) => ({ description, ...json(schemaRef('AnalyticsExport')) });

export const exportPaths = () => ({
  '/analytics/export': {
    post: {
      operationId: 'createAnalyticsExport',
      tags,
      summary: 'Create an Analytics Export',
      description:
        'Schedules the export; it starts `queued`. Read-only fields in the body are ignored. ' +
        'Extension: an `Idempotency-Key` header makes retries safe: the same key and body within 24 hours answer 200 with the same export; the same key with another body answers 409.',
      parameters: [
        {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description: 'Any text of at most 255 characters, unique per intended export.',
          schema: { type: 'string', maxLength: 255 },
        },
      ],
      requestBody: { required: true, ...json(schemaRef('CreateExport')) },
      responses: {
        200: exportResponse('A replay of an earlier request with the same Idempotency-Key and body.'),
        201: exportResponse('Created.'),
        409: { description: 'The Idempotency-Key was used with another body.', ...json(schemaRef('Detail')) },
        ...errors(400, 413, 415),
      },
    },
  },
  '/analytics/exports/': {
    get: {
      operationId: 'listAnalyticsExports',
      tags,
      summary: 'List Analytics Exports',
      description: 'The caller’s visible exports, newest first. No `url` in lists.',
      parameters: listExportsParameters,
      responses: { 200: listPage('A page of exports.', 'AnalyticsExport'), ...errors(400) },
    },
  },
  '/analytics/exports/{id}/': {
    parameters: [idParameter('export')],
    get: {
      operationId: 'retrieveAnalyticsExport',
      tags,
      summary: 'Retrieve an Analytics Export',
      description:
        'When `complete`, `url` is a download link signed on this request and valid for 1 hour (`url_expires`), and `files` lists the ' +
        'export’s files in row order, each with its own link signed for the same hour. A single-file export’s `url` is its file; ' +
        'an export written as several files (larger than EXPORT_MAX_FILE_MIB) has a `url` to a JSON manifest of its files, so that ' +
        'a client reading `url` can never take the first file for the whole export. ' +
        'Extension: `?wait=N` answers as soon as the export is complete or failed (at once if it is), or after N seconds with its current state.',
      parameters: [
        filterParameter(
          'wait',
          { type: 'integer', minimum: 1, maximum: WAIT_MAX_SECONDS },
          `Extension: 1 to ${WAIT_MAX_SECONDS} seconds to wait for the export to become complete or failed.`,
        ),
      ],
      responses: { 200: exportResponse('The export.'), ...errors(400, 404) },
    },
    delete: {
      operationId: 'deleteAnalyticsExport',
      tags,
      summary: 'Delete an Analytics Export',
      description: 'Cancels it first if it is running, and deletes its files so existing links stop working.',
      responses: { 204: { description: 'Deleted.' }, ...errors(403, 404) },
    },
  },
  '/analytics/exports/{id}/cancel/': {
    parameters: [idParameter('export')],
    post: {
      operationId: 'cancelAnalyticsExport',
      tags,
      summary: 'Cancel an Analytics Export (extension)',
      description:
        'A queued export fails at once with errors.code "cancelled" (200); a running one is asked to stop (202) and fails shortly after.',
      responses: {
        200: exportResponse('Cancelled.'),
        202: exportResponse('Cancellation requested.'),
        409: { description: 'Already complete or failed.', ...json(schemaRef('Detail')) },
        ...errors(403, 404),
      },
    },
  },
});
