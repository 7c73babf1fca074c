/**
 * The frozen class-prompt pass (METHOD.md "Losses", L_ICA / L_AUG): the ORIGINAL text encoder and UNet
 * (no placeholder rows, no adapters, nothing trainable) on the same z_t and t as the training step, with
 * the cross-attention maps A(c_hat) as output. Its targets g(M * A(c_hat)) are computed on the host.
 */
import { loadModel, type OnnxModel } from '@dynasyn/ort-training';
import { DiffusionError, textEncoderModel, type ModelBundle } from '@dynasyn/diffusion';
import { composeEncoderUnet, COMPOSED_NAMES, type TensorSpec } from './encoder-unet.js';

export interface ClassMapModelOptions {
  /** Attention grid [gh, gw] (default latent/4); must equal the training graph's. */
  grid?: [number, number];
  /** Batch rows (default 2, as the training graph: reference + augmented class prompts). */
  batch?: number;
}

export interface ClassMapModel {
  model: OnnxModel;
  inputs: { inputIds: TensorSpec; noisyLatents: TensorSpec; timestep: TensorSpec };
  /** `attention_probs` [B, gh*gw, T]: softmax over all T tokens, averaged over heads and layers. */
  output: string;
  grid: [number, number];
}

export function buildClassMapModel(bundle: ModelBundle, options: ClassMapModelOptions = {}): ClassMapModel {
  const composed = composeEncoderUnet(bundle, textEncoderModel(bundle), loadModel(bundle.unetPath), {
    batch: options.batch ?? 2,
    ...(options.grid ? { grid: options.grid } : {}),
  });
  const g = composed.model.graph;
  g.outputs = g.outputs.filter((v) => v.name === COMPOSED_NAMES.attentionProbs);
  g.removeDeadNodes();
  g.sortTopologically();
  return { model: composed.model, inputs: composed.inputs, output: COMPOSED_NAMES.attentionProbs, grid: composed.grid };
}

/**
 * g(M * A) = (M * A) / max(M * A) (METHOD.md "Losses"), zeros when M * A is all zero. `maps` is the class-map
 * output [B, hw, T] (or one row [hw, T]); `tokenIndex` the class word's position in row `row`'s prompt
 * (several positions: their columns are summed, for a class word of several sub-tokens); `maskAtGrid` [hw].
 */
export function classMapTarget(
  maps: { dims: number[]; data: ArrayLike<number> },
  tokenIndex: number | number[],
  maskAtGrid: ArrayLike<number>,
  row = 0,
): Float32Array {
  const [hw, T] = maps.dims.slice(-2) as [number, number];
  const rows = maps.dims.length === 3 ? maps.dims[0]! : 1;
  if (maps.dims.length < 2 || maps.dims.length > 3) throw new DiffusionError('BAD_ARGUMENT', `class maps must be [B, hw, T] or [hw, T], got [${maps.dims}]`);
  if (row < 0 || row >= rows) throw new DiffusionError('BAD_ARGUMENT', `row ${row} is outside the ${rows} rows of the class maps`);
  if (maskAtGrid.length !== hw) throw new DiffusionError('BAD_ARGUMENT', `mask has ${maskAtGrid.length} cells, the attention grid ${hw}`);
  const cols = typeof tokenIndex === 'number' ? [tokenIndex] : tokenIndex;
  for (const c of cols) if (!Number.isInteger(c) || c < 0 || c >= T) throw new DiffusionError('BAD_ARGUMENT', `token index ${c} is outside 0..${T - 1}`);
  const out = new Float32Array(hw);
  let peak = 0;
  for (let p = 0; p < hw; p++) {
    let a = 0;
    for (const c of cols) a += maps.data[(row * hw + p) * T + c]!;
    out[p] = maskAtGrid[p]! * a;
    if (out[p]! > peak) peak = out[p]!;
  }
  if (peak > 0) for (let p = 0; p < hw; p++) out[p] = out[p]! / peak;
  else out.fill(0);
  return out;
}
