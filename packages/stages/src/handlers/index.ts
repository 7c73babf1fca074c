/**
 * The stage handlers, each built from its ports (STYLE.md: `createTrainHandler({ storage, db, backbone, logger })`),
 * and each stage queue of packages/queue with its handlers: what a worker app and `dynasyn serve` run.
 */
import * as queue from '@dynasyn/queue';
import { PermanentStageError } from '../errors.js';
import type { StageCall } from '../lifecycle.js';
import type { StageDeps } from '../ports.js';
import { createAugmentHandler } from './augment.js';
import { createGsaHandler } from './gsa.js';
import { createGenerateHandler, createSampleHandler } from './sample.js';
import { createTrainHandler } from './train.js';

export { createAugmentHandler, type StageHandler } from './augment.js';
export { checkpointUpload, type CheckpointUpload } from './checkpoint-upload.js';
export { createGsaHandler } from './gsa.js';
export { createGenerateHandler, createSampleHandler, initialRequestId, type GenerateCall, type GenerateHandler } from './sample.js';
export { createTrainHandler } from './train.js';

/** The queues a stage worker serves (packages/queue catalogs), in flow order. */
export const STAGE_QUEUES = ['augment', 'gsa', 'train', 'sample'] as const;
export type StageQueue = (typeof STAGE_QUEUES)[number];

/** Permanent failures (a superseded attempt's STAGE_SUPERSEDED too) as BullMQ's UnrecoverableError: no retry. */
async function unlessPermanent<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof PermanentStageError) throw new queue.UnrecoverableError(`${e.code}: ${e.message}`);
    throw e;
  }
}

/** A stage handler as a BullMQ job handler: the last attempt fails the personalization; permanent errors skip retries. */
export function stageJob(handler: (call: StageCall) => Promise<unknown>) {
  return (p: { personalizationId: string; epoch?: number | undefined }, ctx: queue.JobContext): Promise<unknown> =>
    unlessPermanent(() =>
      handler({
        personalizationId: p.personalizationId,
        epoch: p.epoch ?? 0,
        signal: ctx.signal,
        finalAttempt: ctx.job.attemptsMade + 1 >= (ctx.job.opts.attempts ?? 1),
      }),
    );
}

/** The queue worker of one stage queue, every job of its catalog handled (a missing one fails to compile). */
export function createStageWorker(name: StageQueue, deps: StageDeps, options: queue.CreateWorkerOptions): queue.QueueWorker {
  switch (name) {
    case 'augment':
      return queue.createWorker(queue.augmentCatalog, { 'personalization.augment': stageJob(createAugmentHandler(deps)) }, options);
    case 'gsa':
      return queue.createWorker(queue.gsaCatalog, { 'personalization.gsa': stageJob(createGsaHandler(deps)) }, options);
    case 'train':
      return queue.createWorker(queue.trainCatalog, { 'personalization.train': stageJob(createTrainHandler(deps)) }, options);
    case 'sample': {
      const generate = createGenerateHandler(deps);
      return queue.createWorker(
        queue.sampleCatalog,
        {
          'personalization.sample': stageJob(createSampleHandler(deps)),
          'samples.generate': (p, ctx) =>
            unlessPermanent(() =>
              generate({ personalizationId: p.personalizationId, requestId: p.requestId, sampleIds: p.sampleIds, epoch: p.epoch ?? 0, signal: ctx.signal }),
            ),
        },
        options,
      );
    }
  }
}
