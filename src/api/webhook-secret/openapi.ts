import { errors, json } from '../openapi-parts';

/** The webhook signing secret (extension) in the OpenAPI document: the caller's own, for notify_url's notifications. */

export const WEBHOOKS_TAG = {
  name: 'Webhooks',
  description: 'The signing secret of the Standard Webhooks notifications sent to an export’s `notify_url` (extension).',
};

export const webhookSecretPaths = () => ({
  '/analytics/webhook-secret/': {
    post: {
      operationId: 'rotateWebhookSecret',
      tags: [WEBHOOKS_TAG.name],
      summary: 'Create or replace your webhook signing secret (extension)',
      description:
        'Returns `{"id": <your user id>, "secret": "whsec_..."}`, shown this once. Notifications of exports you create are ' +
        'signed with it (Standard Webhooks: headers webhook-id, webhook-timestamp, webhook-signature). Calling again replaces it.',
      responses: {
        201: {
          description: 'The new secret.',
          ...json({
            type: 'object',
            properties: { id: { type: 'string', format: 'uuid' }, secret: { type: 'string', pattern: '^whsec_[A-Za-z0-9+/]+=*$' } },
            required: ['id', 'secret'],
          }),
        },
        ...errors(),
      },
    },
  },
});
