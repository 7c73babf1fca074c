/**
 * The toy-world backbone's UNet at its real size, for the training-step benchmark: built by
 * @dynasyn/diffusion's SD-2.1-shaped generator (the same builder the backbone is trained from), so the
 * graph is the real architecture: conv_in, CrossAttnDownBlock2D at 16x16 and 8x8, DownBlock2D at 4x4, a
 * cross-attention mid block, UpBlock2D then two CrossAttnUpBlock2D, time embedding into every resnet,
 * GEGLU feed-forwards, on 4x16x16 latents (64x64 images) with a 77-token, 128-wide text context.
 * An MSE loss against a `target` input closes the graph, as the diffusion objective does.
 *
 * @dynasyn/diffusion depends on this package, so it is imported at run time (the bench needs its dist).
 * scripts/bench_torch.py --toy builds the PyTorch twin of the same config.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attrs } from '../graph.js';
import { loadModel, type OnnxModel } from '../model.js';
import { DataType } from '../tensor.js';

/** The toy backbone's sizes (an SdBundleConfig of @dynasyn/diffusion); the PyTorch twin reads the same JSON. */
export const TOY_SD_CONFIG = {
  sampleSize: 64,
  latentChannels: 4,
  predictionType: 'epsilon',
  schedulerClass: 'DDIMScheduler',
  unet: {
    blockOutChannels: [64, 128, 128],
    downBlockTypes: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    upBlockTypes: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    layersPerBlock: 1,
    attentionHeads: [2, 4, 4],
    normGroups: 32,
    timeEmbedDim: 256,
    upcastAttention: false,
  },
  textEncoder: { layers: 3, hiddenSize: 128, heads: 4, intermediateSize: 512, vocabSize: 2048, maxPositions: 77 },
  vae: { blockOutChannels: [32, 64, 64], layersPerBlock: 1, normGroups: 32, scalingFactor: 0.18215 },
} as const;

export interface ToyUnet {
  model: OnnxModel;
  /** The float parameters of the UNet (every one trainable in the all-weights step). */
  parameters: number;
  latent: number;
}

/** The toy UNet with batch `batch` fixed in its input shapes and `loss = mean((out_sample - target)^2)`. */
export async function toyUnet(batch: number, dir: string = fs.mkdtempSync(path.join(os.tmpdir(), 'toy-unet-'))): Promise<ToyUnet> {
  const specifier = '@dynasyn/diffusion'; // a variable: no build-time dependency on the package that depends on us
  const diffusion = (await import(specifier)) as {
    createSdBundle(dir: string, o: { config: unknown; seed: number }): Promise<{ parameters: { unet: number } }>;
  };
  const info = await diffusion.createSdBundle(dir, { config: TOY_SD_CONFIG, seed: 7 });
  const model = loadModel(path.join(dir, 'unet', 'model.onnx'));
  const g = model.graph;
  const latent = TOY_SD_CONFIG.sampleSize / 2 ** (TOY_SD_CONFIG.vae.blockOutChannels.length - 1);
  const { hiddenSize, maxPositions } = TOY_SD_CONFIG.textEncoder;
  const shapes: Record<string, number[]> = {
    sample: [batch, TOY_SD_CONFIG.latentChannels, latent, latent],
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
