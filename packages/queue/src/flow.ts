/**
 * The personalization flow augment -> gsa -> train -> sample. In a BullMQ flow a parent runs after its children
 * complete, so the chain is written upside down: `sample` is the root, its child `train`, its child `gsa`, its
 * child `augment` (the leaf, which starts first). Every child sets `failParentOnFailure`: without it a stage
 * that fails for good leaves its parent waiting for children forever.
 */
import type { FlowJob, FlowProducer, JobNode, JobState } from 'bullmq';
import type { QueueName } from './catalog.js';
import { jobOptions, parsePayload, type QueueMap } from './queues.js';

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

export type PersonalizationStage = (typeof personalizationStages)[number]['queue'];

/**
 * The job id of one stage of a personalization: the catalog's id for the chain the API enqueued (generation 0),
 * suffixed `-r<n>` for the chain the reconciler put back under epoch n (the row's fencing token, packages/db
 * fence.ts). A new id per generation keeps anything a worker still holds under an earlier job's id (its lock, its
 * run) apart from the new job.
 */
export function personalizationJobId(stage: PersonalizationStage, personalizationId: string, generation = 0): string {
  const s = personalizationStages.find((x) => x.queue === stage)!;
  const id = jobOptions(s.queue, s.name, { personalizationId }).jobId!;
  return generation > 0 ? `${id}-r${generation}` : id;
}

/** States in which a job will still run (or runs now) without anyone's help. */
export const LIVE_JOB_STATES: readonly (JobState | 'unknown')[] = ['active', 'waiting', 'delayed', 'prioritized'];

/** The state of each stage job of one generation of a personalization's chain in Redis ('unknown': no such job). */
export async function personalizationJobStates(
  queues: QueueMap,
  personalizationId: string,
  generation = 0,
): Promise<Record<PersonalizationStage, JobState | 'unknown'>> {
  const states = await Promise.all(personalizationStages.map((s) => queues[s.queue].getJobState(personalizationJobId(s.queue, personalizationId, generation))));
  return Object.fromEntries(personalizationStages.map((s, i) => [s.queue, states[i]])) as Record<PersonalizationStage, JobState | 'unknown'>;
}

/**
 * Puts a personalization's chain back from stage `from` on, as generation `generation` (its new epoch: the
 * reconciler, after Redis lost or failed an earlier generation, or after it took a hung one over). What is left of
 * `previous` (default `generation - 1`) in Redis (finished, failed, or a parent waiting for a lost child) is
 * removed, then the flow from `from` to `sample` is added under the new ids, carrying the new epoch. Returns false
 * when the previous chain was left in place because a worker holds one of its jobs (its lock): that worker's writes
 * are refused by the fence, and its chain fails when it gives the job up.
 */
export async function restorePersonalizationFlow(
  queues: QueueMap,
  flowProducer: FlowProducer,
  input: PersonalizationFlowInput,
  from: PersonalizationStage,
  generation: number,
  previous = generation - 1,
): Promise<boolean> {
  let removed = true;
  // the root first: removing a parent removes its children with it (nothing, when one of them is locked)
  for (const s of previous >= 0 && previous < generation ? [...personalizationStages].reverse() : []) {
    const id = personalizationJobId(s.queue, input.personalizationId, previous);
    if ((await queues[s.queue].getJob(id)) && (await queues[s.queue].remove(id, { removeChildren: true })) === 0) {
      removed = false;
      break;
    }
  }
  await flowProducer.add(
    personalizationFlow(
      input,
      personalizationStages.findIndex((s) => s.queue === from),
      generation,
    ),
  );
  return removed;
}

/** The chain from stage index `from` to the root, written upside down (see the header). */
function personalizationFlow(input: PersonalizationFlowInput, from: number, generation = 0): FlowJob {
  const data = parsePayload('augment', 'personalization.augment', { v: 1, ...input, ...(generation > 0 ? { epoch: generation } : {}) });
  const root = personalizationStages[personalizationStages.length - 1]!;
  let node: FlowJob | undefined;
  for (const stage of personalizationStages.slice(from)) {
    const opts = { ...jobOptions(stage.queue, stage.name, data), jobId: personalizationJobId(stage.queue, input.personalizationId, generation) };
    node = {
      name: stage.name,
      queueName: stage.queue,
      data,
      opts: stage === root ? opts : { ...opts, failParentOnFailure: true },
      ...(node ? { children: [node] } : {}),
    } as FlowJob;
  }
  return node!;
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
  return flowProducer.add(personalizationFlow(input, 0));
}
