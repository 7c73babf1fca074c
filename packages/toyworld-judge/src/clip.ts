/**
 * The toy CLIP's folder (the layout the product's `--clip` option loads: text_model.onnx, vision_model.onnx,
 * tokenizer/, preprocessor_config.json, plus clip.json), its tokenizer, its training batches and a small
 * runtime that embeds texts and 64x64 images the way the product's ClipModel does.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ClipTokenizer, writeTokenizerFiles, type ClipTokenizerFiles } from '@dynasyn/diffusion';
import { saveModel } from '@dynasyn/ort-training';
import { captionFor, captionsFor, createRng, renderScene, sampleSceneSpec } from '@dynasyn/toyworld';
import { learnCaptionTokenizer } from '@dynasyn/toyworld-backbone';
import { buildTextNet, buildVisionNet, CLIP_IMAGE_SIZE, type ClipDims } from './clip-net.js';
import { imageToChw } from './judge-data.js';
import type { Weights } from './nn.js';

const S = CLIP_IMAGE_SIZE;

/** The tokenizer: the backbone's BPE learner on the captions of `scenes` training scenes (4 each) of the seed. */
export function clipTokenizerFiles(seed: string | number, scenes = 2000): ClipTokenizerFiles {
  const captions: string[] = [];
  for (let i = 0; i < scenes; i++) captions.push(...captionsFor(sampleSceneSpec(`${seed}/clip-tokenizer/${i}`)));
  return learnCaptionTokenizer(captions);
}

/** ids and attention mask of a caption as ClipModel makes them: padded to T, the mask up to and including the end token. */
export function encodeCaption(tokenizer: ClipTokenizer, text: string, T: number): { ids: number[]; mask: number[] } {
  const ids = Array.from(tokenizer.encodePadded(text, T));
  const end = ids.indexOf(tokenizer.eosId);
  return { ids, mask: ids.map((_, i) => (i <= end ? 1 : 0)) };
}

export interface ClipBatch {
  pixels: Float32Array;
  ids: BigInt64Array;
  mask: BigInt64Array;
  targets: Float32Array;
  captions: string[];
}

/** The batch of `step`: fresh renders (no held-out identity), each with its complete caption or a random partial one. */
export function clipBatch(tokenizer: ClipTokenizer, d: ClipDims, seed: string | number, step: number, batch: number): ClipBatch {
  const rng = createRng(`${seed}/clip-train/${step}`);
  const T = d.context;
  const out: ClipBatch = {
    pixels: new Float32Array(batch * 3 * S * S),
    ids: new BigInt64Array(batch * T),
    mask: new BigInt64Array(batch * T),
    targets: new Float32Array(batch * batch),
    captions: [],
  };
  for (let b = 0; b < batch; b++) {
    const spec = sampleSceneSpec(rng, { heldOut: 'exclude' });
    const scene = renderScene(spec, { size: S });
    const caption = rng.chance(0.5) ? scene.captions[0]! : captionFor(spec, rng, { detail: 'random' });
    imageToChw(scene.rgb, out.pixels, b * 3 * S * S);
    const { ids, mask } = encodeCaption(tokenizer, caption, T);
    ids.forEach((v, t) => (out.ids[b * T + t] = BigInt(v)));
    mask.forEach((v, t) => (out.mask[b * T + t] = BigInt(v)));
    out.captions.push(caption);
  }
  for (let i = 0; i < batch; i++) {
    const same = out.captions.filter((c) => c === out.captions[i]).length;
    for (let j = 0; j < batch; j++) if (out.captions[j] === out.captions[i]) out.targets[i * batch + j] = 1 / same;
  }
  return out;
}

/** clip.json: the dimensions the towers were built with. */
export interface ClipManifest {
  format: 'toyworld-clip/1';
  dims: ClipDims;
  logitScale: number;
}

export function writeClipFolder(dir: string, d: ClipDims, weights: Weights, tokenizer: ClipTokenizerFiles): void {
  mkdirSync(dir, { recursive: true });
  saveModel(buildTextNet(d, weights).model('dynasyn-toyworld-clip'), join(dir, 'text_model.onnx'));
  saveModel(buildVisionNet(d, weights).model('dynasyn-toyworld-clip'), join(dir, 'vision_model.onnx'));
  writeTokenizerFiles(join(dir, 'tokenizer'), tokenizer);
  const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  writeFileSync(
    join(dir, 'preprocessor_config.json'),
    json({
      image_processor_type: 'CLIPImageProcessor',
      do_resize: true,
      size: { shortest_edge: S },
      do_center_crop: true,
      crop_size: { height: S, width: S },
      do_rescale: true,
      rescale_factor: 1 / 255,
      do_normalize: true,
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
    }),
  );
  const manifest: ClipManifest = { format: 'toyworld-clip/1', dims: d, logitScale: Math.exp(weights.get('logit_scale')!.data[0] as number) };
  writeFileSync(join(dir, 'clip.json'), json(manifest));
}

/** Embeds captions and 64x64 renders with a toy CLIP folder (unit vectors), as the product's ClipModel would. */
export class ToyClip {
  private constructor(
    private readonly text: ort.InferenceSession,
    private readonly vision: ort.InferenceSession,
    private readonly tokenizer: ClipTokenizer,
    readonly manifest: ClipManifest,
  ) {}

  static async load(dir: string, options: { threads?: number } = {}): Promise<ToyClip> {
    const so: ort.InferenceSession.SessionOptions = { intraOpNumThreads: options.threads ?? 1, interOpNumThreads: 1 };
    const manifest = JSON.parse(readFileSync(join(dir, 'clip.json'), 'utf8')) as ClipManifest;
    return new ToyClip(
      await ort.InferenceSession.create(join(dir, 'text_model.onnx'), so),
      await ort.InferenceSession.create(join(dir, 'vision_model.onnx'), so),
      ClipTokenizer.fromDir(join(dir, 'tokenizer')),
      manifest,
    );
  }

  async embedTexts(texts: string[]): Promise<Float32Array[]> {
    const T = this.manifest.dims.context,
      n = texts.length;
    const ids = new BigInt64Array(n * T),
      mask = new BigInt64Array(n * T);
    texts.forEach((t, i) => {
      const e = encodeCaption(this.tokenizer, t, T);
      e.ids.forEach((v, k) => (ids[i * T + k] = BigInt(v)));
      e.mask.forEach((v, k) => (mask[i * T + k] = BigInt(v)));
    });
    const out = await this.text.run({ input_ids: new ort.Tensor('int64', ids, [n, T]), attention_mask: new ort.Tensor('int64', mask, [n, T]) });
    return rows(out['text_embeds']!.data as Float32Array, n);
  }

  async embedImages(images: Uint8Array[]): Promise<Float32Array[]> {
    const n = images.length;
    const px = new Float32Array(n * 3 * S * S);
    images.forEach((rgb, i) => imageToChw(rgb, px, i * 3 * S * S));
    const out = await this.vision.run({ pixel_values: new ort.Tensor('float32', px, [n, 3, S, S]) });
    return rows(out['image_embeds']!.data as Float32Array, n);
  }

  async release(): Promise<void> {
    await this.text.release();
    await this.vision.release();
  }
}

function rows(data: Float32Array, n: number): Float32Array[] {
  const E = data.length / n;
  return Array.from({ length: n }, (_, i) => {
    const v = data.slice(i * E, (i + 1) * E);
    const norm = Math.hypot(...v) || 1;
    return v.map((x) => x / norm);
  });
}

export const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
