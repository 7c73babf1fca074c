/**
 * Loading a model bundle from a local directory in the layout Hugging Face optimum writes for Stable
 * Diffusion ONNX exports (DESIGN.md "Model bundle"). Facts come from the submodels' config.json files,
 * then from the ONNX graphs' input/output shapes, then from SD defaults. Nothing here creates sessions.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModel, OrtTrainingError, type Dim, type OnnxModel } from '@dynasyn/ort-training';
import { DiffusionError } from './errors.js';
import { parseSchedulerConfig } from './scheduler-config.js';
import { ClipTokenizer } from './tokenizer.js';
import type { ModelBundle } from './types.js';

export { parseSchedulerConfig, DEFAULT_SCHEDULER_CONFIG } from './scheduler-config.js';

/** Stable Diffusion's values, used when neither configs nor graphs say otherwise. */
export const SD_DEFAULTS = Object.freeze({ vaeScaleFactor: 8, vaeScalingFactor: 0.18215, maxTokens: 77, sampleSize: 512, latentChannels: 4 });

export interface LoadBundleOptions {
  /**
   * Which ONNX graphs to parse (protobuf only; external weights are never read): 'auto' (default) parses a
   * model whose file is at most `inspectMaxBytes` or whose facts the configs lack; 'always' parses all four;
   * 'never' only checks that the files exist (facts missing from configs then take SD defaults).
   */
  inspectModels?: 'auto' | 'always' | 'never';
  /** Size limit for 'auto' inspection; default 64 MiB (a UNet with external data is a few MB). */
  inspectMaxBytes?: number;
}

type Json = Record<string, unknown>;

const SUBMODELS = {
  text_encoder: { what: 'the CLIP text encoder (input_ids -> last_hidden_state)', inputs: ['input_ids'] },
  unet: { what: 'the denoising UNet (sample, timestep, encoder_hidden_states -> out_sample)', inputs: ['sample', 'timestep', 'encoder_hidden_states'] },
  vae_encoder: { what: 'the VAE encoder (image -> latents), for image-to-image and training', inputs: ['sample'] },
  vae_decoder: { what: 'the VAE decoder (latents -> image)', inputs: ['latent_sample'] },
} as const;
type Submodel = keyof typeof SUBMODELS;

function readJson(file: string, what: string, required: true): Json;
function readJson(file: string, what: string, required: false): Json | undefined;
function readJson(file: string, what: string, required: boolean): Json | undefined {
  if (!existsSync(file)) {
    if (required) throw new DiffusionError('MISSING_FILE', `bundle file ${file} is missing (${what})`);
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DiffusionError('BAD_CONFIG', `${file} (${what}) is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new DiffusionError('BAD_CONFIG', `${file} (${what}) must hold a JSON object`);
  return value as Json;
}

/** A positive integer field of a config, or undefined when absent; BAD_CONFIG when present but wrong. */
function intField(config: Json | undefined, field: string, source: string): number | undefined {
  const v = config?.[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new DiffusionError('BAD_CONFIG', `${source}: "${field}" is ${JSON.stringify(v)}, expected a positive integer`);
  return v;
}

const staticDim = (d: Dim | undefined): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);

/** Lazily parsed ONNX graphs of a bundle, with errors translated to DiffusionError. */
class GraphInspector {
  private readonly cache = new Map<Submodel, OnnxModel>();
  constructor(private readonly paths: Record<Submodel, string>) {}

  get(name: Submodel): OnnxModel {
    const hit = this.cache.get(name);
    if (hit) return hit;
    const file = this.paths[name];
    let model: OnnxModel;
    try {
      model = loadModel(file);
    } catch (e) {
      if (e instanceof OrtTrainingError && e.code === 'MISSING_EXTERNAL_DATA')
        throw new DiffusionError('MISSING_FILE', `${name} (${SUBMODELS[name].what}): ${e.message}`, { cause: e });
      throw new DiffusionError('BAD_MODEL', `${file} (${SUBMODELS[name].what}) does not parse as ONNX: ${(e as Error).message}`, { cause: e });
    }
    const names = model.graph.inputs.map((i) => i.name).filter((n) => !model.graph.initializers.has(n));
    for (const need of SUBMODELS[name].inputs) {
      if (!names.includes(need))
        throw new DiffusionError('BAD_MODEL', `${file} (${SUBMODELS[name].what}) has no input "${need}"; its inputs are ${names.join(', ') || '(none)'}`);
    }
    this.cache.set(name, model);
    return model;
  }

  /** Dimension `axis` of graph input or output `tensor` of `name` when it is static. */
  dim(name: Submodel, tensor: { input: string } | { output: number }, axis: number): number | undefined {
    const g = this.get(name).graph;
    const info = 'input' in tensor ? g.inputs.find((i) => i.name === tensor.input) : g.outputs[tensor.output];
    return staticDim(info?.shape?.[axis]);
  }
}

/**
 * Loads and validates the bundle in `dir`: required files present, JSON well-formed, scheduler config
 * valid, tokenizer readable, ONNX graphs parsed as `options.inspectModels` says. Throws DiffusionError
 * (BAD_BUNDLE, MISSING_FILE, BAD_CONFIG, BAD_MODEL) naming the file and what it is for.
 */
export function loadBundle(dir: string, options: LoadBundleOptions = {}): ModelBundle {
  const root = resolve(dir);
  if (!existsSync(root)) throw new DiffusionError('BAD_BUNDLE', `model bundle directory ${root} does not exist`);
  if (!statSync(root).isDirectory()) throw new DiffusionError('BAD_BUNDLE', `model bundle ${root} is not a directory`);

  const modelIndex = readJson(join(root, 'model_index.json'), "the pipeline index that names the bundle's parts", true);
  const schedulerFile = join(root, 'scheduler', 'scheduler_config.json');
  const scheduler = parseSchedulerConfig(readJson(schedulerFile, 'the noise schedule: betas, prediction type, timestep spacing', true), schedulerFile);

  const tokenizerDir = join(root, 'tokenizer');
  for (const [file, what] of [
    ['vocab.json', 'the CLIP BPE vocabulary'],
    ['merges.txt', 'the CLIP BPE merge list'],
  ] as const) {
    if (!existsSync(join(tokenizerDir, file))) throw new DiffusionError('MISSING_FILE', `bundle file ${join(tokenizerDir, file)} is missing (${what})`);
  }
  const tokenizer = ClipTokenizer.fromDir(tokenizerDir);

  const paths = {} as Record<Submodel, string>;
  for (const name of Object.keys(SUBMODELS) as Submodel[]) {
    const file = join(root, name, 'model.onnx');
    if (!existsSync(file)) throw new DiffusionError('MISSING_FILE', `bundle file ${file} is missing (${SUBMODELS[name].what})`);
    paths[name] = file;
  }
  const configs = {} as Record<Submodel, Json | undefined>;
  for (const name of Object.keys(SUBMODELS) as Submodel[]) configs[name] = readJson(join(root, name, 'config.json'), `${name} configuration`, false);
  const src = (name: Submodel) => join(root, name, 'config.json');

  const inspect = options.inspectModels ?? 'auto';
  const graphs = new GraphInspector(paths);
  const maxBytes = options.inspectMaxBytes ?? 64 * 2 ** 20;
  if (inspect !== 'never') {
    for (const name of Object.keys(SUBMODELS) as Submodel[]) if (inspect === 'always' || statSync(paths[name]).size <= maxBytes) graphs.get(name);
  }
  // A fact from the graphs, unless inspection is off.
  const fromGraph = (f: () => number | undefined): number | undefined => (inspect === 'never' ? undefined : f());

  const unet = configs.unet;
  const vae = configs.vae_decoder ?? configs.vae_encoder;
  const vaeSrc = configs.vae_decoder ? src('vae_decoder') : src('vae_encoder');
  const text = configs.text_encoder;

  // diffusers: vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
  const blocks = vae?.['block_out_channels'];
  if (blocks !== undefined && (!Array.isArray(blocks) || blocks.length === 0))
    throw new DiffusionError('BAD_CONFIG', `${vaeSrc}: "block_out_channels" is ${JSON.stringify(blocks)}, expected a non-empty array`);
  const vaeScaleFactor = Array.isArray(blocks) ? 2 ** (blocks.length - 1) : SD_DEFAULTS.vaeScaleFactor;

  const scaling = vae?.['scaling_factor'];
  if (scaling !== undefined && (typeof scaling !== 'number' || !(scaling > 0)))
    throw new DiffusionError('BAD_CONFIG', `${vaeSrc}: "scaling_factor" is ${JSON.stringify(scaling)}, expected a positive number`);
  const vaeScalingFactor = typeof scaling === 'number' ? scaling : SD_DEFAULTS.vaeScalingFactor;

  // An inpainting UNet takes 9 input channels but its latents have 4: prefer the VAE's and the UNet's output.
  const latentChannels =
    intField(vae, 'latent_channels', vaeSrc) ??
    intField(unet, 'out_channels', src('unet')) ??
    intField(unet, 'in_channels', src('unet')) ??
    fromGraph(() => graphs.dim('vae_decoder', { input: 'latent_sample' }, 1) ?? graphs.dim('unet', { output: 0 }, 1)) ??
    SD_DEFAULTS.latentChannels;

  const latentSize = intField(unet, 'sample_size', src('unet'));
  const sampleSize =
    (latentSize !== undefined ? latentSize * vaeScaleFactor : undefined) ??
    intField(vae, 'sample_size', vaeSrc) ??
    fromGraph(() => {
      const h = graphs.dim('unet', { input: 'sample' }, 2);
      return h !== undefined ? h * vaeScaleFactor : undefined;
    }) ??
    SD_DEFAULTS.sampleSize;

  const textEmbedDim =
    intField(text, 'hidden_size', src('text_encoder')) ??
    intField(unet, 'cross_attention_dim', src('unet')) ??
    fromGraph(() => graphs.dim('text_encoder', { output: 0 }, 2) ?? graphs.dim('unet', { input: 'encoder_hidden_states' }, 2));
  if (textEmbedDim === undefined) {
    // A wrong width would only fail later inside onnxruntime, far from the cause: refuse to guess.
    throw new DiffusionError(
      'BAD_BUNDLE',
      `${root}: cannot tell the text encoder's hidden width: no hidden_size in ${src('text_encoder')}, no cross_attention_dim in ${src('unet')}, and the graphs do not fix it${inspect === 'never' ? ' (model inspection is off)' : ''}`,
    );
  }

  const maxTokens =
    intField(text, 'max_position_embeddings', src('text_encoder')) ??
    fromGraph(() => graphs.dim('text_encoder', { input: 'input_ids' }, 1)) ??
    // The tokenizer's model_max_length, itself CLIP's 77 when the file is silent.
    tokenizer.modelMaxLength;

  return {
    dir: root,
    modelIndex,
    scheduler,
    tokenizerDir,
    textEncoderPath: paths.text_encoder,
    unetPath: paths.unet,
    vaeEncoderPath: paths.vae_encoder,
    vaeDecoderPath: paths.vae_decoder,
    sampleSize,
    vaeScaleFactor,
    latentChannels,
    vaeScalingFactor,
    textEmbedDim,
    maxTokens,
  };
}

/** `["diffusers", "PNDMScheduler"]` -> "PNDMScheduler". */
function componentClass(index: Json, part: string): string | undefined {
  const v = index[part];
  return Array.isArray(v) && typeof v[1] === 'string' ? v[1] : undefined;
}

/** One paragraph about a bundle, for the CLI and logs. */
export function describeBundle(b: ModelBundle): string {
  const pipeline = typeof b.modelIndex['_class_name'] === 'string' ? b.modelIndex['_class_name'] : 'diffusion pipeline';
  const version = typeof b.modelIndex['_diffusers_version'] === 'string' ? ` (diffusers ${b.modelIndex['_diffusers_version']})` : '';
  const latent = b.sampleSize / b.vaeScaleFactor;
  const s = b.scheduler;
  const betas = s.trainedBetas
    ? `${s.trainedBetas.length} trained betas`
    : `${s.betaSchedule} betas ${s.betaStart}..${s.betaEnd} over ${s.numTrainTimesteps} steps`;
  const schedulerClass = componentClass(b.modelIndex, 'scheduler');
  return (
    `${pipeline}${version} at ${b.dir}: ${b.sampleSize}x${b.sampleSize} px images from ${b.latentChannels}x${latent}x${latent} latents ` +
    `(VAE factor ${b.vaeScaleFactor}, scaling ${b.vaeScalingFactor}); text encoder width ${b.textEmbedDim} over ${b.maxTokens} tokens; ` +
    `${s.predictionType} prediction, ${betas}, ${s.timestepSpacing} timestep spacing, steps_offset ${s.stepsOffset}` +
    `${schedulerClass ? ` (configured for ${schedulerClass})` : ''}.`
  );
}
