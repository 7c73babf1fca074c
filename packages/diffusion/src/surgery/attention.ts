/**
 * Cross-attention capture (METHOD.md "Losses", attention maps A_{t,i}): a UNet that also outputs
 * `attention_probs [B, h*w, keys]`, the softmax probabilities over all prompt tokens of the cross-attention
 * layers at one grid (default latent/4), averaged over heads and then over the layers of the chosen blocks
 * (default down and up, not mid).
 */
import { scalar, type OnnxModel } from '@dynasyn/ort-training';
import { DiffusionError } from '../errors.js';
import { findCrossAttentionLayers, type CrossAttentionLayer, type UNetBlock, type UNetInputNames } from './attention-layers.js';
import { NodeFactory, copyModel, int64Tensor } from './edit.js';

export { findCrossAttentionLayers, gridOf, type CrossAttentionLayer, type UNetBlock, type UNetInputNames } from './attention-layers.js';

export const ATTENTION_OUTPUT = 'attention_probs';

export interface AttentionCaptureOptions extends UNetInputNames {
  /** Concrete shapes of the UNet inputs with symbolic dimensions (the captured maps are shaped by them). */
  inputShapes: Record<string, number[]>;
  /**
   * [h, w] of the layers to capture. Default: the latent size divided by 4, rounded up (SD's 16x16 at 64x64
   * latents), or, in a UNet with no layer of the chosen blocks there (a small UNet: 4x4 would be its mid block
   * only), the coarsest grid those blocks have.
   */
  grid?: [number, number];
  /** Blocks whose layers are averaged (default ['down', 'up']). */
  blocks?: UNetBlock[];
}

export interface AttentionCaptureModel {
  model: OnnxModel;
  outputName: typeof ATTENTION_OUTPUT;
  /** The captured layers, in graph order. */
  layers: CrossAttentionLayer[];
}

/** latent/4 where the blocks have layers at that grid, else their coarsest grid (else latent/4, for the error). */
function defaultGrid(all: CrossAttentionLayer[], blocks: UNetBlock[], quarter: [number, number]): [number, number] {
  const mine = all.filter((l) => blocks.includes(l.block));
  if (mine.length === 0 || mine.some((l) => l.grid[0] === quarter[0] && l.grid[1] === quarter[1])) return quarter;
  return mine.map((l) => l.grid).reduce((a, b) => (b[0] * b[1] < a[0] * a[1] ? b : a));
}

export function withAttentionCapture(unet: OnnxModel, options: AttentionCaptureOptions): AttentionCaptureModel {
  const all = findCrossAttentionLayers(unet, options.inputShapes, options);
  const sampleName = options.sample ?? 'sample';
  const sampleInput = unet.graph.inputs.find((v) => v.name === sampleName)!;
  const [, , H, W] = (options.inputShapes[sampleName] ?? sampleInput.shape) as number[];
  const blocks = options.blocks ?? ['down', 'up'];
  const grid = options.grid ?? defaultGrid(all, blocks, [Math.ceil(H! / 4), Math.ceil(W! / 4)]);
  const layers = all.filter((l) => l.grid[0] === grid[0] && l.grid[1] === grid[1] && blocks.includes(l.block));
  if (layers.length === 0) {
    const found = all.length ? all.map((l) => `${l.block} ${l.grid[0]}x${l.grid[1]}`).join(', ') : 'none';
    throw new DiffusionError(
      'BAD_ARGUMENT',
      `no cross-attention layer of the ${blocks.join('/')} blocks has grid ${grid[0]}x${grid[1]} (layers found: ${found})`,
    );
  }

  const model = copyModel(unet);
  const g = model.graph;
  if (g.uniqueName(ATTENTION_OUTPUT) !== ATTENTION_OUTPUT)
    throw new DiffusionError('BAD_MODEL', `the UNet already has a tensor named ${ATTENTION_OUTPUT} (attention capture applied twice?)`);
  const f = new NodeFactory(g, model, 'attention_capture');
  const perLayer = layers.map((l) => {
    // [B*heads, q, k] -> [B, heads, q, k]: batch-major, as diffusers folds heads (reshape b,n,h,d -> permute)
    const split =
      l.layout === 'batch-heads' ? f.add('Reshape', [l.probs, f.constant(int64Tensor([-1, l.heads, l.queryLength, l.keyLength]), 'heads_shape')]) : l.probs;
    return f.reduceMean(split, [1], false);
  });
  const summed = perLayer.length === 1 ? perLayer[0]! : f.add('Sum', perLayer);
  const dtype = sampleInput.dtype;
  f.add('Mul', [summed, f.constant(scalar(dtype, 1 / layers.length), 'layer_mean')], {}, ATTENTION_OUTPUT);
  g.addOutput({ name: ATTENTION_OUTPUT, dtype, shape: [sampleInput.shape?.[0] ?? 'batch', layers[0]!.queryLength, layers[0]!.keyLength] });
  g.sortTopologically();
  return { model, outputName: ATTENTION_OUTPUT, layers };
}
