/** A few optimizer steps of each phase lower its loss on a fixed batch (same images, noise and timesteps). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ClipTokenizer } from '@dynasyn/diffusion';
import { AdamW, DataType, loadModel, TrainingSession } from '@dynasyn/ort-training';
import { writeWeights } from './bundle-io.js';
import { batchAt, latentSubjectWeights, stackImages, subjectWeights, type Example } from './data.js';
import { DiffusionTrainer } from './diffusion-trainer.js';
import { repeating, tinyStartingBundle } from './testing-fixtures.js';
import { latentScalingFactor } from './train.js';
import { LOSS, LOSS_WEIGHT, withMseLoss } from './training-graphs.js';
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

it('the subject-weighted reconstruction loss is mean(w (decoder(z) - x)^2), and its gradient in z matches finite differences', async () => {
  const { bundleDir, source } = await tinyStartingBundle(join(dir, 'weighted'));
  const B = 2,
    S = source.size,
    C = 4,
    h = S / 4;
  const examples = await batchAt(source, 0, 0, B);
  const x = stackImages(examples);
  const w = subjectWeights(examples, S, 8);
  // the weights: 8 on the subjects and the pixel around them, 1 elsewhere, and some of each in every example
  for (let b = 0; b < B; b++) {
    const plane = w.subarray(b * S * S, (b + 1) * S * S);
    expect(plane.some((v) => v === 8) && plane.some((v) => v === 1)).toBe(true);
  }
  const decPath = join(bundleDir, 'vae_decoder', 'model.onnx');
  const session = await TrainingSession.create({
    model: withMseLoss(loadModel(decPath), 'sample', 'target', true),
    loss: LOSS,
    trainable: ['latent_sample'],
    inputShapes: { latent_sample: [B, C, h, h], target: [B, 3, S, S], [LOSS_WEIGHT]: [B, 1, S, S] },
    cacheDir: join(dir, 'cache'),
    sessionOptions,
  });
  const plain = await ort.InferenceSession.create(decPath, sessionOptions);
  // independent reference: the untouched decoder's forward, the weighted mean on the host, in float64
  const hostLoss = async (z: Float32Array): Promise<number> => {
    const y = (await plain.run({ latent_sample: new ort.Tensor('float32', z, [B, C, h, h]) })).sample!.data as Float32Array;
    let sum = 0;
    for (let b = 0; b < B; b++)
      for (let k = 0; k < 3; k++)
        for (let p = 0; p < S * S; p++) {
          const i = (b * 3 + k) * S * S + p;
          sum += w[b * S * S + p]! * (y[i]! - x[i]!) ** 2;
        }
    return sum / (B * 3 * S * S);
  };
  try {
    const z = Float32Array.from({ length: B * C * h * h }, (_, i) => Math.sin(1.7 * i));
    session.setTrainable('latent_sample', { dtype: DataType.FLOAT, dims: [B, C, h, h], data: z });
    const r = await session.step({ target: new ort.Tensor('float32', x, [B, 3, S, S]), [LOSS_WEIGHT]: new ort.Tensor('float32', w, [B, 1, S, S]) });
    expect(r.loss).toBeCloseTo(await hostLoss(z), 5);
    const g = r.grads.get('latent_sample')!.data as Float32Array;
    const eps = 1e-2;
    for (const i of [0, 17, 45, B * C * h * h - 1]) {
      const up = Float32Array.from(z),
        down = Float32Array.from(z);
      up[i]! += eps;
      down[i]! -= eps;
      const fd = ((await hostLoss(up)) - (await hostLoss(down))) / (2 * eps);
      expect(Math.abs(g[i]! - fd)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)) + 1e-4);
    }
  } finally {
    await session.release();
    await plain.release();
  }
});

it('latent subject weights: each latent cell weighs 1 + (w - 1) x the share of its pixels on or next to a subject', () => {
  const S = 8;
  const subjects = new Uint8Array(S * S);
  subjects[3 * S + 3] = 1; // one subject pixel at (3, 3): with its neighbours, rows and columns 2-4 weigh w
  const e: Example = { rgb: new Float32Array(3 * S * S), caption: '', subjects };
  const none: Example = { rgb: new Float32Array(3 * S * S), caption: '' };
  const w = latentSubjectWeights([e, none], S, 2, 5);
  // 4x4-pixel cells: of the 3x3 near pixels the top-left cell holds 2x2, the top-right and bottom-left 2, the last 1
  expect(Array.from(w.subarray(0, 4))).toEqual([1 + (4 * 4) / 16, 1 + (4 * 2) / 16, 1 + (4 * 2) / 16, 1 + 4 / 16]);
  expect(Array.from(w.subarray(4))).toEqual([1, 1, 1, 1]); // no mask: plain MSE
  expect(() => latentSubjectWeights([e], S, 3, 5)).toThrow(/not a multiple/);
});

it('a subject-weighted diffusion step weighs the subjects up: from the same weights, batch and noise its loss exceeds the plain one', async () => {
  const { bundleDir, source } = await tinyStartingBundle(join(dir, 'weighted-diffusion'));
  const batch = 2;
  const vaeEncoderPath = join(bundleDir, 'vae_encoder', 'model.onnx');
  const tokenizer = ClipTokenizer.fromDir(join(bundleDir, 'tokenizer'));
  const lossAt = async (subjectWeight: number): Promise<number> => {
    const trainer = await DiffusionTrainer.create({
      bundleDir,
      vaeEncoderPath,
      scalingFactor: 1,
      tokenizer,
      source,
      seed: 0,
      batch,
      emptyCaption: 0.1,
      subjectWeight,
      optimizer: new AdamW({ lr: 1e-3 }),
      cacheDir: join(dir, 'cache'),
      sessionOptions,
    });
    try {
      return (await trainer.step(0)).loss;
    } finally {
      await trainer.release();
    }
  };
  const plain = await lossAt(1),
    weighted = await lossAt(4);
  // the weights are 1 on the background and up to 4 on the subjects (every synthetic scene has one), so
  // mean(w e^2) lies strictly between mean(e^2) and 4 mean(e^2)
  expect(weighted).toBeGreaterThan(plain * 1.01);
  expect(weighted).toBeLessThan(plain * 4);
});
