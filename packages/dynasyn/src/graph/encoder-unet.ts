/**
 * Text encoder -> UNet (with cross-attention capture) as one graph at batch 2, the common part of the
 * training graph and of the frozen class-map graph. Row 0 is the reference image, row 1 one augmented image.
 */
import { defaultOpset, inferTypes, type OnnxModel, type TensorType } from '@dynasyn/ort-training';
import { DiffusionError, withAttentionCapture, type ModelBundle } from '@dynasyn/diffusion';
import { findInput, mergeModels, mergedName, outputName, type GraphPart } from './compose.js';

/** A graph input the host feeds: name, ONNX element type, concrete shape. */
export interface TensorSpec {
  name: string;
  dtype: number;
  dims: number[];
}

/** Names of the composed graph's own inputs and outputs. */
export const COMPOSED_NAMES = {
  inputIds: 'input_ids',
  noisyLatents: 'noisy_latents',
  timestep: 'timestep',
  prediction: 'prediction',
  attentionProbs: 'attention_probs',
  /** The frozen branch's class-prompt ids [B,T] and its cross-attention maps A(c_hat) [B,gh*gw,T]. */
  classInputIds: 'class_input_ids',
  classAttentionProbs: 'class_attention_probs',
} as const;

export interface ComposeOptions {
  /** Attention grid [gh, gw] (default latent/4, rounded up). */
  grid?: [number, number];
  /** Batch rows (2: reference + augmented). */
  batch: number;
  /** Names of either model kept verbatim (placeholder and adapter inputs). */
  keep?: Set<string>;
  /**
   * The ORIGINAL text encoder and UNet (as loaded: no placeholders, no adapters) as a second, frozen branch
   * of the same graph, reading the same weights: on `class_input_ids` and the same z_t and t it gives
   * `class_attention_probs` (METHOD.md: A(c_hat) from the frozen original model). One session then holds the
   * weights once, where a separate frozen session would hold them twice. No trainable tensor reaches it.
   */
  frozen?: { textEncoder: OnnxModel; unet: OnnxModel };
}

export interface ComposedModel {
  model: OnnxModel;
  /** Static types of every tensor of the merged graph. */
  types: Map<string, TensorType>;
  inputs: { inputIds: TensorSpec; noisyLatents: TensorSpec; timestep: TensorSpec; classInputIds?: TensorSpec };
  grid: [number, number];
  opset: number;
  /** The UNet takes a timestep per row ([batch]), not one for the whole batch ([1] or a scalar). */
  timestepPerRow: boolean;
}

/**
 * Merge `textEncoder` (original or with placeholders/adapters) and `unet` (original or with adapters),
 * capture the UNet's cross-attention at `grid`, and fix the batch. Outputs: `prediction` [B,C,h,w] and
 * `attention_probs` [B,gh*gw,T].
 */
export function composeEncoderUnet(bundle: ModelBundle, textEncoder: OnnxModel, unet: OnnxModel, options: ComposeOptions): ComposedModel {
  const B = options.batch;
  const T = bundle.maxTokens;
  const D = bundle.textEmbedDim;
  const sample = findInput(unet, ['sample'], `UNet ${bundle.unetPath}`);
  const timestep = findInput(unet, ['timestep', 'timesteps', 't'], `UNet ${bundle.unetPath}`);
  const context = findInput(unet, ['encoder_hidden_states'], `UNet ${bundle.unetPath}`);
  // optimum exports timestep [batch]; older exports take one for the whole batch, as [1] or a 0-d tensor
  const tShape = timestep.shape ?? [null];
  if (tShape.length > 1) {
    throw new DiffusionError('UNSUPPORTED', `UNet ${bundle.unetPath} takes timestep of shape [${tShape.join(',')}]; expected [batch], [1] or a scalar`);
  }
  const tDims = tShape.length === 0 ? [] : tShape[0] === 1 ? [1] : [B];
  const sampleDims = (sample.shape ?? []).map((d, i) => (i === 0 ? B : d));
  if (sampleDims.length !== 4 || sampleDims.some((d) => typeof d !== 'number')) {
    const side = bundle.sampleSize / bundle.vaeScaleFactor;
    sampleDims.splice(0, 4, B, bundle.latentChannels, side, side);
  }
  const latent = sampleDims as number[];
  const capture = (model: OnnxModel) =>
    withAttentionCapture(model, {
      sample: sample.name,
      context: context.name,
      inputShapes: { [sample.name]: latent, [timestep.name]: tDims, [context.name]: [B, T, D] },
      ...(options.grid ? { grid: options.grid } : {}),
    });
  const captured = capture(unet);
  const grid = captured.layers[0]!.grid;

  /** A text encoder -> captured UNet pair of parts; the UNet's outputs go to `prediction` and `attention`. */
  const pair = (
    te: OnnxModel,
    cap: typeof captured,
    p: { prefix: string; ids: string; prediction: string; attention: string; shared?: boolean; keep?: Set<string> },
  ): GraphPart[] => {
    const teIds = findInput(te, ['input_ids'], `text encoder ${bundle.textEncoderPath}`).name;
    const hidden = outputName(te, 'last_hidden_state', ['pooler_output']);
    const unetOut = outputName(cap.model, 'out_sample', [cap.outputName]);
    const tePart: GraphPart = {
      model: te,
      prefix: `${p.prefix}text_encoder/`,
      keep: new Set([...(p.keep ?? []), teIds]),
      rename: new Map([[teIds, p.ids]]),
      ...(p.shared ? { initializerPrefix: 'text_encoder/' } : {}),
    };
    const unPart: GraphPart = {
      model: cap.model,
      prefix: `${p.prefix}unet/`,
      keep: p.keep ?? new Set(),
      rename: new Map([
        [sample.name, COMPOSED_NAMES.noisyLatents],
        [timestep.name, COMPOSED_NAMES.timestep],
        [context.name, mergedName(tePart, hidden)],
        [unetOut, p.prediction],
        [cap.outputName, p.attention],
      ]),
      internalInputs: new Set([context.name]),
      ...(p.shared ? { initializerPrefix: 'unet/' } : {}),
    };
    return [tePart, unPart];
  };
  const keep = options.keep ?? new Set<string>();
  const parts = pair(textEncoder, captured, {
    prefix: '',
    ids: COMPOSED_NAMES.inputIds,
    prediction: COMPOSED_NAMES.prediction,
    attention: COMPOSED_NAMES.attentionProbs,
    keep,
  });
  if (options.frozen) {
    // its UNet prediction has no reader: removeDeadNodes drops the frozen UNet after its last captured layer
    parts.push(
      ...pair(options.frozen.textEncoder, capture(options.frozen.unet), {
        prefix: 'frozen/',
        ids: COMPOSED_NAMES.classInputIds,
        prediction: 'frozen/prediction',
        attention: COMPOSED_NAMES.classAttentionProbs,
        shared: true,
      }),
    );
  }
  const model = mergeModels(parts);
  const g = model.graph;
  const shapes: Record<string, number[]> = {
    [COMPOSED_NAMES.inputIds]: [B, T],
    [COMPOSED_NAMES.noisyLatents]: latent,
    [COMPOSED_NAMES.timestep]: tDims,
    ...(options.frozen ? { [COMPOSED_NAMES.classInputIds]: [B, T] } : {}),
  };
  g.inputs = g.inputs.map((v) => (shapes[v.name] ? { ...v, shape: shapes[v.name] } : v));
  const opset = defaultOpset(model);
  let types: Map<string, TensorType>;
  try {
    types = inferTypes(g, { opset }).types;
  } catch (e) {
    throw new DiffusionError('BAD_MODEL', `the composed text encoder + UNet graph does not type-check at batch ${B}: ${(e as Error).message}`, { cause: e });
  }
  for (const name of [COMPOSED_NAMES.prediction, COMPOSED_NAMES.attentionProbs, ...(options.frozen ? [COMPOSED_NAMES.classAttentionProbs] : [])]) {
    const t = types.get(name)!;
    g.outputs.push({ name, dtype: t.dtype, shape: [...t.dims] });
  }
  const spec = (name: string): TensorSpec => ({ name, dtype: g.inputs.find((v) => v.name === name)!.dtype, dims: shapes[name]! });
  return {
    model,
    types,
    grid,
    opset,
    timestepPerRow: tShape.length === 1 && tShape[0] !== 1,
    inputs: {
      inputIds: spec(COMPOSED_NAMES.inputIds),
      noisyLatents: spec(COMPOSED_NAMES.noisyLatents),
      timestep: spec(COMPOSED_NAMES.timestep),
      ...(options.frozen ? { classInputIds: spec(COMPOSED_NAMES.classInputIds) } : {}),
    },
  };
}
