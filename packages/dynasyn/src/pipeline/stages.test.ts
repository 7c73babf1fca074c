/**
 * The stage functions on the tiny bundle (smoke preset): run one by one on a run directory (as the service's
 * handlers do, one per worker) they give byte for byte what personalize() gives; a stage whose output the
 * directory holds returns it without work; training reports each checkpoint rewrite; an aborted augment
 * stores no composed set.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyBundle, loadBundle, type ModelBundle } from '@dynasyn/diffusion';
import { personalize } from '../personalize.js';
import { resolveOptions } from '../presets.js';
import { twoSubjectInput } from '../testing/two-subjects.js';
import { augmentStage, gsaStage, holdsSet } from './augment.js';
import { completedPhases, prepareStage } from './prepare.js';
import type { StageRun } from './run.js';
import { reportStage, sampleStage } from './sample.js';
import { trainStage } from './train.js';

let root: string;
let bundle: ModelBundle;
const options = resolveOptions('smoke', { intraOpNumThreads: 1 }); // 2 + 2 steps, a checkpoint at each
const input = twoSubjectInput();

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-stages-'));
  await createTinyBundle(path.join(root, 'bundle'), { seed: 3 });
  bundle = loadBundle(path.join(root, 'bundle'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const runIn = (name: string): StageRun => ({ dir: path.join(root, name), bundle, input, options });
const bytes = (dir: string, file: string) => fs.readFileSync(path.join(dir, file));

test('the stages one by one give what personalize() gives; each returns what the directory holds', async () => {
  const run = runIn('staged');
  fs.mkdirSync(run.dir, { recursive: true });
  await prepareStage(run);
  expect((await augmentStage(run)).length).toBe(options.augmentation.count);
  await gsaStage(run);
  const checkpoints: string[] = [];
  const trained = await trainStage({ ...run, graphCacheDir: path.join(root, 'graphs'), onCheckpoint: (f) => checkpoints.push(f) });
  // rewritten at every step, seen after each step: at least once per phase
  expect(checkpoints.length).toBeGreaterThanOrEqual(2);
  for (const f of checkpoints) expect(f).toBe(path.join(run.dir, 'checkpoints', 'checkpoint.safetensors'));
  expect(trained.trained).toBeDefined();
  expect(trained.summary.steps).toEqual({ phase1: 2, phase2: 2 });
  const samples = await sampleStage(run);
  await reportStage(run);
  expect(completedPhases(run.dir)).toEqual(['prepare', 'compose', 'augment', 'phase1', 'phase2', 'sample', 'report']);

  const whole = await personalize({
    backbone: bundle.dir,
    outDir: path.join(root, 'whole'),
    options,
    graphCacheDir: path.join(root, 'graphs'),
    input: { image: input.image, subjects: input.subjects.map((s) => ({ mask: s.mask, classWord: s.classWord })) },
  });
  for (const f of ['embeddings.safetensors', 'adapters.safetensors', ...samples.map((s) => s.file)]) {
    expect([f, bytes(run.dir, f).equals(bytes(whole.outDir, f))]).toEqual([f, true]);
  }

  // run again (a job delivered twice): outputs returned from the directory, no training, no checkpoint
  const seen = checkpoints.length;
  const again = await trainStage({ ...run, onCheckpoint: (f) => checkpoints.push(f) });
  expect(again.trained).toBeUndefined();
  expect([again.summary.steps, again.summary.loss]).toEqual([trained.summary.steps, trained.summary.loss]);
  expect(checkpoints).toHaveLength(seen);
  expect(await sampleStage(run)).toEqual(samples);
});

test('an aborted augment stage throws and leaves no composed set', async () => {
  const run = { ...runIn('aborted'), signal: AbortSignal.abort(new Error('stop')) };
  fs.mkdirSync(run.dir, { recursive: true });
  await prepareStage(run);
  await expect(augmentStage(run)).rejects.toThrow('stop');
  expect(holdsSet(run.dir, 'composed')).toBe(false);
  expect(completedPhases(run.dir)).toEqual(['prepare']);
});
