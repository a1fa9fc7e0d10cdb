import { errors, filterParameter, jsonSchemaOf, listPage } from '../openapi-parts';
import { pageParameters } from '../pagination';
import { DeviceResource, MetricResource, ROOT_PARENT, SpaceResource } from './schemas';

/** What a client can query, in the OpenAPI document: the metric catalogue, devices and spaces. */

export const DISCOVERY_TAG = {
  name: 'Discovery',
  description: 'The metrics, devices and spaces an Analytics Query can name, as far as the caller may see them.',
};
const tags = [DISCOVERY_TAG.name];

export const discoverySchemas = () => ({
  Metric: jsonSchemaOf(MetricResource),
  Device: jsonSchemaOf(DeviceResource),
  Space: jsonSchemaOf(SpaceResource),
});

export const discoveryPaths = () => ({
  '/analytics/metrics/': {
    get: {
      operationId: 'listMetrics',
      tags,
      summary: 'List the metric catalogue',
      description: 'Every metric a query can name, by name; the same for every caller.',
      parameters: pageParameters,
      responses: { 200: listPage('A page of metrics.', 'Metric'), ...errors(400) },
    },
  },
  '/analytics/devices/': {
    get: {
      operationId: 'listDevices',
      tags,
      summary: 'List devices',
      description: 'The devices of the customers the caller sees, by name.',
      parameters: [
        ...pageParameters,
        filterParameter('space', { type: 'string', format: 'uuid' }, 'Only the devices placed directly in this space.'),
        filterParameter('name__contains', { type: 'string' }, 'Case-insensitive substring of the name (`%` and `_` match themselves).'),
      ],
      responses: { 200: listPage('A page of devices.', 'Device'), ...errors(400) },
    },
  },
  '/analytics/spaces/': {
    get: {
      operationId: 'listSpaces',
      tags,
      summary: 'List spaces',
      description: 'The spaces of the customers the caller sees, by name.',
      parameters: [
        ...pageParameters,
        filterParameter(
          'parent',
          {
            anyOf: [
              { type: 'string', format: 'uuid' },
              { type: 'string', const: ROOT_PARENT },
            ],
          },
          `Only the direct children of this space; \`${ROOT_PARENT}\` for the spaces that are part of none (buildings).`,
        ),
      ],
      responses: { 200: listPage('A page of spaces.', 'Space'), ...errors(400) },
    },
  },
});
