/**
 * The personalization flow augment -> gsa -> train -> sample. In a BullMQ flow a parent runs after its children
 * complete, so the chain is written upside down: `sample` is the root, its child `train`, its child `gsa`, its
 * child `augment` (the leaf, which starts first). Every child sets `failParentOnFailure`: without it a stage
 * that fails for good leaves its parent waiting for children forever.
 */
import type { FlowJob, FlowProducer, JobNode } from 'bullmq';
import type { QueueName } from './catalog.js';
import { jobOptions, parsePayload } from './queues.js';

/** Stages in execution order. */
export const personalizationStages = [
  { queue: 'augment', name: 'personalization.augment' },
  { queue: 'gsa', name: 'personalization.gsa' },
  { queue: 'train', name: 'personalization.train' },
  { queue: 'sample', name: 'personalization.sample' },
] as const satisfies readonly { queue: QueueName; name: string }[];

export interface PersonalizationFlowInput {
  personalizationId: string;
  tenantId: string;
}

/**
 * Enqueues the whole chain for one personalization. Job ids derive from the personalization id, so a second call
 * for the same personalization returns the existing flow without adding jobs.
 */
export async function enqueuePersonalizationFlow(flowProducer: FlowProducer, input: PersonalizationFlowInput): Promise<JobNode> {
  const data = parsePayload('augment', 'personalization.augment', { v: 1, ...input });
  const root = personalizationStages[personalizationStages.length - 1]!;
  const rootId = jobOptions(root.queue, root.name, data).jobId!;
  // An existing root means the flow was enqueued before: re-adding children of a finished parent would
  // register new dependencies on it, so return what is there.
  const existing = await flowProducer.getFlow({ id: rootId, queueName: root.queue, depth: 4 }).catch(() => undefined);
  if (existing?.job) return existing;

  let node: FlowJob | undefined;
  for (const stage of personalizationStages) {
    const opts = jobOptions(stage.queue, stage.name, data);
    node = {
      name: stage.name,
      queueName: stage.queue,
      data,
      opts: stage === root ? opts : { ...opts, failParentOnFailure: true },
      ...(node ? { children: [node] } : {}),
    } as FlowJob;
  }
  return flowProducer.add(node!);
}
