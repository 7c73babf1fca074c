/**
 * The bundle on disk: the seeded starting bundle (createSdBundle with the toy config and the learned
 * tokenizer), trained weights written back into its graphs, and the finished bundle's JSON files.
 */
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createSdBundle, type ClipTokenizerFiles, type SdBundleConfig } from '@dynasyn/diffusion';
import { DataType, initializerFromHost, initializerToHost, isExternal, loadModel, readExternal, saveModel, type HostTensor } from '@dynasyn/ort-training';

export const MODELS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'] as const;
export type BundleModel = (typeof MODELS)[number];

const modelFile = (dir: string, model: BundleModel) => join(dir, model, 'model.onnx');

/**
 * The starting bundle from `seed`: createSdBundle's initialisation, except the UNet's conv_out and each
 * resnet's conv2 start at zero (the ADM / DDPM practice: every residual branch and the output start as the
 * identity and zero, which trains faster from scratch than random residual branches).
 */
export async function createInitialBundle(dir: string, config: SdBundleConfig, tokenizer: ClipTokenizerFiles, seed: number): Promise<void> {
  await createSdBundle(dir, { config, tokenizer, seed });
  const unet = loadModel(modelFile(dir, 'unet'));
  const zeros = new Map<string, HostTensor>();
  for (const init of unet.graph.initializers.values()) {
    if (init.dtype === DataType.FLOAT && /(^|\.)conv_out\.|\.conv2\./.test(init.name))
      zeros.set(init.name, { dtype: DataType.FLOAT, dims: init.dims, data: new Float32Array(init.dims.reduce((a, b) => a * b, 1)) });
  }
  writeWeights(dir, dir, 'unet', zeros);
}

/** Writes `src`'s model with `weights` in place of its initializers of those names (all inline) to `dst`. */
export function writeWeights(srcDir: string, dstDir: string, model: BundleModel, weights: Map<string, HostTensor>): void {
  const m = loadModel(modelFile(srcDir, model));
  for (const [name, t] of weights) {
    const old = m.graph.initializers.get(name);
    if (!old || old.dims.join() !== t.dims.join()) throw new Error(`${model}: no initializer ${name} of shape [${t.dims}]`);
    m.graph.initializers.set(name, initializerFromHost(name, t));
  }
  // loadModel leaves large inline weights as references into the source file: copy them in, so the file
  // written stands alone (and may replace its source)
  for (const init of [...m.graph.initializers.values()])
    if (isExternal(init.data)) m.graph.initializers.set(init.name, initializerFromHost(init.name, initializerToHost(init, readExternal)));
  const dst = modelFile(dstDir, model);
  mkdirSync(dirname(dst), { recursive: true });
  saveModel(m, `${dst}.tmp`);
  renameSync(`${dst}.tmp`, dst);
}

const readJson = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const writeJson = (file: string, v: unknown) => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(v, null, 2) + '\n');
};

/** Copies the bundle's JSON files and tokenizer from `srcDir` to `dstDir`, with the trained VAE's scaling factor and without the random-weights marker. */
export function writeBundleFiles(srcDir: string, dstDir: string, scalingFactor: number, extra: Record<string, unknown>): void {
  const index = readJson(join(srcDir, 'model_index.json'));
  delete index['_random_weights'];
  writeJson(join(dstDir, 'model_index.json'), { ...index, ...extra });
  for (const f of ['scheduler/scheduler_config.json', 'text_encoder/config.json', 'unet/config.json']) writeJson(join(dstDir, f), readJson(join(srcDir, f)));
  for (const f of ['vae_encoder/config.json', 'vae_decoder/config.json'])
    writeJson(join(dstDir, f), { ...readJson(join(srcDir, f)), scaling_factor: Number(scalingFactor.toPrecision(6)) });
  mkdirSync(join(dstDir, 'tokenizer'), { recursive: true });
  for (const f of ['vocab.json', 'merges.txt', 'special_tokens_map.json', 'tokenizer_config.json'])
    copyFileSync(join(srcDir, 'tokenizer', f), join(dstDir, 'tokenizer', f));
}
