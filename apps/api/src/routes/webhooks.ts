/** The tenant's webhook signing secret (Standard Webhooks, `whsec_` + base64) and its delivery log. */
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { errors } from './schemas.js';

const secretSchema = { type: 'object', required: ['secret'], properties: { secret: { type: 'string' } } } as const;

export function webhookRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/v1/webhooks/secret',
    {
      schema: {
        operationId: 'getWebhookSecret',
        summary: 'The secret that signs every webhook delivery',
        tags: ['webhooks'],
        response: { 200: secretSchema, ...errors(401) },
      },
    },
    async (request) => ({ secret: request.tenant.webhookSecret }),
  );

  app.post(
    '/v1/webhooks/secret/rotate',
    {
      schema: {
        operationId: 'rotateWebhookSecret',
        summary: 'Replace the signing secret; deliveries from now on use the new one',
        tags: ['webhooks'],
        response: { 200: secretSchema, ...errors(401) },
      },
    },
    async (request) => {
      return { secret: await deps.db.tenants.rotateWebhookSecret(request.tenant.id) };
    },
  );

  app.get(
    '/v1/webhooks/deliveries',
    {
      schema: {
        operationId: 'listWebhookDeliveries',
        summary: 'Recent deliveries with their attempts and response codes',
        tags: ['webhooks'],
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 } } },
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: {
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' },
                    eventType: { type: 'string' },
                    url: { type: 'string' },
                    status: { type: 'string' },
                    attempts: { type: 'integer' },
                    lastStatusCode: { type: ['integer', 'null'], description: 'HTTP status of the last attempt' },
                    lastError: { type: ['string', 'null'] },
                    createdAt: { type: 'string', format: 'date-time' },
                    deliveredAt: { type: ['string', 'null'], format: 'date-time' },
                  },
                },
              },
            },
          },
          ...errors(401),
        },
      },
    },
    async (request) => {
      const { limit } = request.query as { limit: number };
      return { items: await deps.db.webhooks.listDeliveries(request.tenant.id, limit) };
    },
  );
}
