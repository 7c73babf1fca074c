/**
 * The toy-world backbone's UNet at its real size, for the training-step benchmark: the architecture of the
 * trained bundle (models/toyworld), whose one definition is @dynasyn/diffusion's toyworldBundleConfig, built by
 * that package's SD-2.1-shaped generator (the same builder the backbone is trained from), so the graph is the
 * real architecture: conv_in, CrossAttnDownBlock2D at 16x16 and 8x8, DownBlock2D at 4x4, a cross-attention mid
 * block, UpBlock2D then two CrossAttnUpBlock2D, 4 heads at every level, time embedding into every resnet, GEGLU
 * feed-forwards, on 4x16x16 latents (64x64 images) with a 77-token, 128-wide text context.
 * An MSE loss against a `target` input closes the graph, as the diffusion objective does.
 *
 * Until the config came from @dynasyn/diffusion the bench had its own copy, with 2 heads (not 4) at level 0
 * and a [32,64,64] VAE (not built into the timed graph): the README's figures measured with it are marked so.
 *
 * @dynasyn/diffusion depends on this package, so it is imported at run time (the bench needs its dist).
 * scripts/bench_torch_toy.py builds the PyTorch twin of the same config (from its JSON).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attrs } from '../graph.js';
import { loadModel, type OnnxModel } from '../model.js';
import { DataType } from '../tensor.js';

/** The parts of @dynasyn/diffusion's SdBundleConfig the bench reads; the whole object goes to the generator and the PyTorch twin. */
export interface ToySdConfig {
  sampleSize: number;
  latentChannels: number;
  textEncoder: { hiddenSize: number; maxPositions: number };
  vae: { blockOutChannels: readonly number[] };
}

interface Diffusion {
  toyworldBundleConfig(vocabSize: number): ToySdConfig;
  createSdBundle(dir: string, o: { config: unknown; seed: number }): Promise<{ parameters: { unet: number } }>;
}

async function diffusion(): Promise<Diffusion> {
  const specifier = '@dynasyn/diffusion'; // a variable: no build-time dependency on the package that depends on us
  return (await import(specifier)) as Diffusion;
}

/** Rows of the text encoder's token embedding: the UNet does not depend on it (only the untimed text encoder does). */
const TOY_VOCAB_SIZE = 2048;

/** The toy backbone's sizes (@dynasyn/diffusion's toyworldBundleConfig); the PyTorch twin reads the same JSON. */
export async function toySdConfig(): Promise<ToySdConfig> {
  return (await diffusion()).toyworldBundleConfig(TOY_VOCAB_SIZE);
}

export interface ToyUnet {
  model: OnnxModel;
  /** The float parameters of the UNet (every one trainable in the all-weights step). */
  parameters: number;
  latent: number;
}

/** The toy UNet with batch `batch` fixed in its input shapes and `loss = mean((out_sample - target)^2)`. */
export async function toyUnet(batch: number, dir: string = fs.mkdtempSync(path.join(os.tmpdir(), 'toy-unet-'))): Promise<ToyUnet> {
  const config = await toySdConfig();
  const info = await (await diffusion()).createSdBundle(dir, { config, seed: 7 });
  const model = loadModel(path.join(dir, 'unet', 'model.onnx'));
  const g = model.graph;
  const latent = config.sampleSize / 2 ** (config.vae.blockOutChannels.length - 1);
  const { hiddenSize, maxPositions } = config.textEncoder;
  const shapes: Record<string, number[]> = {
    sample: [batch, config.latentChannels, latent, latent],
    timestep: [batch],
    encoder_hidden_states: [batch, maxPositions, hiddenSize],
  };
  for (const v of g.inputs) v.shape = shapes[v.name] ?? v.shape;
  g.addInput({ name: 'target', dtype: DataType.FLOAT, shape: shapes.sample! });
  const out = g.outputs[0]!.name;
  g.addNode({ opType: 'Sub', inputs: [out, 'target'], outputs: ['toy_diff'] });
  g.addNode({ opType: 'Mul', inputs: ['toy_diff', 'toy_diff'], outputs: ['toy_sq'] });
  g.addNode({ opType: 'ReduceMean', inputs: ['toy_sq'], outputs: ['loss'], attributes: attrs({ keepdims: 0 }) });
  g.outputs = [{ name: 'loss', dtype: DataType.FLOAT, shape: [] }];
  return { model, parameters: info.parameters.unet, latent };
}
