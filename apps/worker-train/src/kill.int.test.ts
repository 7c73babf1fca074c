/**
 * The worker-train PROCESS on the real Redis queue and Postgres: killed with SIGKILL mid-training, a new process
 * takes the stalled job up once its lock runs out, resumes from the checkpoint in storage and finishes, with one
 * artifact row per key and one `personalization.training.completed`. Runs the built app (`npm run build`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeQueues, createQueues, enqueue, redisOptions } from '@dynasyn/queue';
import { createAugmentHandler, createGsaHandler } from '@dynasyn/stages';
import { createPgStageBed, type PgStageBed } from '../../../packages/stages/src/testing/fixture.js';
import { waitFor } from '../../../packages/queue/src/testing/wait.js';

const MAIN = join(fileURLToPath(new URL('.', import.meta.url)), '../dist/index.js');
const PREFIX = `killtest${Date.now()}`;
let bed: PgStageBed;
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
  bed = await createPgStageBed();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await bed?.cleanup();
});

function startWorker(): { child: ChildProcess; log: () => string } {
  let out = '';
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: bed.databaseUrl,
      REDIS_URL: 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: PREFIX,
      STORAGE_URL: bed.storageUrl,
      BACKBONE: bed.deps.backbone,
      WORK_DIR: join(bed.root, `work-${children.length}`),
      THREADS: '1',
      // a lease (and job lock) longer than a training step on a busy machine: the worker's event loop stops for each
      STAGE_LOCK_SECONDS: '15',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  children.push(child);
  return { child, log: () => out };
}

it('a worker killed mid-training is replaced and the job finishes from its checkpoint', async () => {
  const id = await bed.addJob(
    { augmentation: { count: 0 }, train: { phase1: { steps: 40 }, phase2: { steps: 4 }, checkpointEvery: 2 } },
    'https://hooks.example/x',
  );
  await createAugmentHandler(bed.deps)({ personalizationId: id });
  await createGsaHandler(bed.deps)({ personalizationId: id });
  const set = createQueues({ connection: redisOptions('redis://127.0.0.1:6379', 'producer'), prefix: PREFIX });
  try {
    const job = await enqueue(set.queues, 'train', 'personalization.train', { personalizationId: id, tenantId: bed.tenantId });
    const trainStep = async () =>
      ((await bed.db.personalizations.findById(id))!.progress as { stage: string; step: number }[]).find((p) => p.stage === 'train')?.step ?? 0;

    const first = startWorker();
    // past step 6 and a checkpoint uploaded (without one a restart rightly begins again from step 1)
    const ckKey = `tenants/${bed.tenantId}/personalizations/${id}/run/checkpoints/checkpoint.safetensors`;
    await waitFor(
      'training to pass step 6 with a checkpoint in storage',
      async () => (await trainStep()) >= 6 && (await bed.deps.storage.head(ckKey)) !== null,
      90_000,
    );
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const killedAt = await trainStep();
    expect(killedAt).toBeLessThan(44);

    const second = startWorker();
    await waitFor('the restarted worker to finish training', async () => (await bed.db.personalizations.findById(id))!.status === 'sampling', 120_000);
    await waitFor(`the resume in the log:\n${second.log()}`, () => /training resumed from the stored checkpoint/.test(second.log()), 5_000);
    // the status moves to `sampling` before the stage records its event: wait for the job itself to end
    await waitFor('the train job to complete', async () => (await set.queues.train.getJobState(job.id!)) === 'completed', 10_000);

    const keys = (await bed.db.artifacts.list(id)).map((a) => a.key);
    expect(new Set(keys).size).toBe(keys.length);
    for (const f of ['embeddings.safetensors', 'adapters.safetensors', 'checkpoints/checkpoint.safetensors'])
      expect(keys.filter((k) => k.endsWith(f))).toHaveLength(1);
    expect((await bed.db.webhooks.list(bed.tenantId, { personalizationId: id })).map((d) => d.eventType)).toEqual(['personalization.training.completed']);
    second.child.kill('SIGTERM');
    expect(await new Promise((r) => second.child.once('exit', (code) => r(code)))).toBe(0);
  } finally {
    await closeQueues(set);
  }
}, 240_000);
