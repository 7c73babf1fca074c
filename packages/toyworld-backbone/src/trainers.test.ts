/** A few optimizer steps of each phase lower its loss on a fixed batch (same images, noise and timesteps). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipTokenizer } from '@dynasyn/diffusion';
import { AdamW } from '@dynasyn/ort-training';
import { writeWeights } from './bundle-io.js';
import { DiffusionTrainer } from './diffusion-trainer.js';
import { repeating, tinyStartingBundle } from './testing-fixtures.js';
import { latentScalingFactor } from './train.js';
import { VaeTrainer } from './vae-trainer.js';

const sessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'toy-trainers-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('VAE steps lower the reconstruction loss, then diffusion steps lower the epsilon loss, on a fixed batch', async () => {
  const { bundleDir, source } = await tinyStartingBundle(dir);
  const batch = 4;
  const fixed = repeating(source, batch);
  const cacheDir = join(dir, 'cache');

  const vaeOpt = new AdamW({ lr: 3e-3, weightDecay: 0, maxGradNorm: 1 });
  const vae = await VaeTrainer.create({ bundleDir, source: fixed, seed: 0, batch, klWeight: 1e-4, optimizer: vaeOpt, cacheDir, sessionOptions });
  const vaeLosses: number[] = [];
  try {
    for (let i = 0; i < 15; i++) vaeLosses.push((await vae.step(0)).terms.mse!);
    for (const m of ['vae_encoder', 'vae_decoder'] as const) writeWeights(bundleDir, join(dir, 'vae'), m, vae.group.weightsOf(m));
  } finally {
    await vae.release();
  }
  expect(vaeLosses.at(-1)!).toBeLessThan(0.7 * vaeLosses[0]!);

  const vaeEncoderPath = join(dir, 'vae', 'vae_encoder', 'model.onnx');
  const scalingFactor = await latentScalingFactor(vaeEncoderPath, fixed, 0, batch, sessionOptions, 1);
  expect(scalingFactor).toBeGreaterThan(0);
  const opt = new AdamW({ lr: 3e-3, maxGradNorm: 1 });
  const tokenizer = ClipTokenizer.fromDir(join(bundleDir, 'tokenizer'));
  const diffusion = await DiffusionTrainer.create({
    bundleDir,
    vaeEncoderPath,
    scalingFactor,
    tokenizer,
    source: fixed,
    seed: 0,
    batch,
    emptyCaption: 0.1,
    optimizer: opt,
    cacheDir,
    sessionOptions,
  });
  const losses: number[] = [];
  const textBefore = diffusion.group.getTrainable('text_encoder/text_model.embeddings.token_embedding.weight');
  try {
    for (let i = 0; i < 12; i++) losses.push((await diffusion.step(0)).loss);
  } finally {
    await diffusion.release();
  }
  expect(losses.at(-1)!).toBeLessThan(0.8 * losses[0]!);
  // the text encoder trains too: its gradient comes from the UNet's through encoder_hidden_states
  const textAfter = diffusion.group.getTrainable('text_encoder/text_model.embeddings.token_embedding.weight');
  const moved = (textAfter.data as Float32Array).some((v, i) => v !== (textBefore.data as Float32Array)[i]);
  expect(moved).toBe(true);
});
