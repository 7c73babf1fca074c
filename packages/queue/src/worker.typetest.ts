/**
 * Compile-time contract of createWorker (checked by `tsc -p tsconfig.typetest.json`, run from catalog.test.ts):
 * every `@ts-expect-error` below must stay an error, or the compile fails.
 */
import { sampleCatalog, trainCatalog } from './catalog.js';
import { enqueue, type QueueMap } from './queues.js';
import { createWorker } from './worker.js';

const options = { connection: {}, prefix: 'p' };

// Complete handler maps compile, and payloads arrive typed.
createWorker(trainCatalog, { 'personalization.train': async (p) => p.personalizationId.length }, options);
createWorker(sampleCatalog, { 'personalization.sample': async () => undefined, 'samples.generate': async (p) => p.sampleIds.length }, options);

// @ts-expect-error a handler map missing 'samples.generate' does not compile
createWorker(sampleCatalog, { 'personalization.sample': async () => undefined }, options);

createWorker(
  trainCatalog,
  {
    'personalization.train': async () => undefined,
    // @ts-expect-error a handler for a job the catalog does not have does not compile
    'personalization.extra': async () => undefined,
  },
  options,
);

// @ts-expect-error a handler reading a field the payload does not have does not compile
createWorker(trainCatalog, { 'personalization.train': async (p) => p.imageBytes }, options);

declare const queues: QueueMap;
void enqueue(queues, 'webhooks', 'webhook.deliver', { deliveryId: 'd1' });
// @ts-expect-error a job name from another queue does not compile
void enqueue(queues, 'webhooks', 'personalization.train', { personalizationId: 'p', tenantId: 't' });
// @ts-expect-error a payload missing a field does not compile
void enqueue(queues, 'sample', 'samples.generate', { personalizationId: 'p', tenantId: 't', requestId: 'r' });
