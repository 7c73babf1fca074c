/**
 * A Stable-Diffusion-class pipeline over a model bundle: text-to-image with classifier-free guidance,
 * image-to-image (SDEdit) and inpainting by masked latent blending. Sessions are created once and reused
 * across calls; VAE encoder only when an image comes in. Reproducibility: see noise.ts.
 */
import { loadBundle } from '../bundle.js';
import { ClipTokenizer } from '../tokenizer.js';
import { DiffusionError } from '../errors.js';
import { createScheduler, SCHEDULER_KINDS, type SchedulerKind } from '../schedulers/index.js';
import type { FloatTensor } from '../tensor.js';
import type { AttentionMaps, ModelBundle, RuntimeOptions, Scheduler } from '../types.js';
import { ClipTextEncoder } from '../runtime/text-encoder.js';
import { Unet } from '../runtime/unet.js';
import type { UnetAttentionOptions } from '../runtime/surgery.js';
import { VaeDecoder, VaeEncoder } from '../runtime/vae.js';
import { usesGuidance } from './guidance.js';
import { BatchNoise, seedsFor } from './noise.js';
import { denoise, type DenoiseResult, type ProgressCallback } from './denoise.js';
import { imagesToTensor, maskToLatentGrid, tensorToImages, type MaskPixels, type RgbPixels } from './images.js';

export interface PipelineOptions extends RuntimeOptions {
  /**
   * Placeholder tokens (`<asset0>`, ...) added to the tokenizer; their rows come from `placeholderEmbeddings`
   * at sampling time. Default: none.
   */
  placeholderTokens?: readonly string[];
  /** Embedding rows per placeholder token (multi-vector textual inversion; default 1): the rows of `<asset0>` come first. */
  placeholderVectors?: number;
  /**
   * Where rewritten models (surgery on models with external data) are saved; default: temporary
   * directories removed on release.
   */
  cacheDir?: string;
  /**
   * Capture cross-attention maps while sampling (e.g. for pseudo masks of subjects); each result then has
   * `attention`, averaged over the denoising steps. Default: off (the plain UNet, slightly faster).
   */
  captureAttention?: UnetAttentionOptions;
}

export interface SampleOptions {
  /** One prompt (with `batch` copies) or one per image. */
  prompt?: string;
  prompts?: readonly string[];
  /** Negative prompt (the unconditional branch of guidance); one for all or one per image. Default ''. */
  negativePrompt?: string | readonly string[];
  /** Denoising steps of the full schedule (image-to-image runs a `strength` fraction of them). Default 50. */
  steps?: number;
  /** Classifier-free guidance scale; <= 1 disables guidance. Default 7.5. */
  guidance?: number;
  /** Seed of image 0 (image i uses seed + i) or one seed per image; default: random (returned). */
  seed?: number | readonly number[];
  /** Default 'ddim'. */
  scheduler?: SchedulerKind;
  /** DDIM's eta (0 = deterministic DDIM). Default 0. */
  eta?: number;
  /** Images per prompt when `prompt` is a single string. Default 1. */
  batch?: number;
  /** Placeholder rows [P,D]; required when the pipeline has placeholder tokens. */
  placeholderEmbeddings?: FloatTensor | Float32Array;
  onProgress?: ProgressCallback;
}

export interface ImageToImageOptions extends SampleOptions {
  /** Start image(s) at the bundle's native size (one for all, or one per image). */
  image: RgbPixels | readonly RgbPixels[];
  /** How much to change the image, 0..1: the fraction of the schedule that runs (SDEdit t0 = strength T). Default 0.8. */
  strength?: number;
}

export interface InpaintOptions extends SampleOptions {
  image: RgbPixels | readonly RgbPixels[];
  /** Region to repaint (1 = repaint), image-sized; one for all or one per image. */
  mask: MaskPixels | readonly MaskPixels[];
}

export interface SampleResult {
  images: RgbPixels[];
  /** Final latents [B,C,h,w] (scaled, as the UNet sees them). */
  latents: FloatTensor;
  /** Seed of each image: pass them back to reproduce the images exactly. */
  seeds: number[];
  /**
   * With `captureAttention`: per image, the cross-attention probabilities over the prompt's 77 tokens
   * ([B, h*w, 77]) averaged over the steps that ran, from the conditional (prompt) rows.
   */
  attention?: AttentionMaps;
}

export class DiffusionPipeline {
  private vaeEncoder?: VaeEncoder;

  private constructor(
    readonly bundle: ModelBundle,
    readonly tokenizer: ClipTokenizer,
    readonly textEncoder: ClipTextEncoder,
    readonly unet: Unet,
    readonly vaeDecoder: VaeDecoder,
    private readonly runtime: RuntimeOptions,
  ) {}

  /** Loads a bundle (directory or already loaded) and creates the text encoder, UNet and VAE decoder sessions. */
  static async create(bundle: ModelBundle | string, options: PipelineOptions = {}): Promise<DiffusionPipeline> {
    const b = typeof bundle === 'string' ? loadBundle(bundle) : bundle;
    const runtime: RuntimeOptions = {
      ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
      ...(options.intraOpNumThreads !== undefined ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    };
    const tokenizer = ClipTokenizer.fromDir(b.tokenizerDir);
    const placeholders = options.placeholderTokens ?? [];
    const baseVocabSize = tokenizer.size;
    if (placeholders.length) tokenizer.addTokens(placeholders, options.placeholderVectors ?? 1);
    const [textEncoder, unet, vaeDecoder] = await Promise.all([
      ClipTextEncoder.create(b, {
        ...runtime,
        placeholders: tokenizer.size - baseVocabSize,
        baseVocabSize,
        ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
      }),
      Unet.create(b, {
        ...runtime,
        ...(options.captureAttention ? { captureAttention: options.captureAttention } : {}),
        ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
      }),
      VaeDecoder.create(b, runtime),
    ]);
    return new DiffusionPipeline(b, tokenizer, textEncoder, unet, vaeDecoder, runtime);
  }

  /** Hidden states for the prompts: [negatives; prompts] (2B rows) under guidance, else the prompts' B rows. */
  async encodePrompts(
    prompts: readonly string[],
    negative: string | readonly string[] = '',
    guidance = 7.5,
    placeholderEmbeddings?: FloatTensor | Float32Array,
  ): Promise<FloatTensor> {
    const negs = typeof negative === 'string' ? prompts.map(() => negative) : [...negative];
    if (negs.length !== prompts.length) throw new DiffusionError('BAD_ARGUMENT', `${negs.length} negative prompts for ${prompts.length} prompts`);
    const texts = usesGuidance(guidance) ? [...negs, ...prompts] : [...prompts];
    const ids = texts.map((t) => this.tokenizer.encodePadded(t, this.bundle.maxTokens));
    return this.textEncoder.encode(ids, placeholderEmbeddings);
  }

  /** Text-to-image: latents = noise * initNoiseSigma, then the full schedule. */
  async textToImage(o: SampleOptions): Promise<SampleResult> {
    const s = this.prepare(o);
    const latents = s.noise.draw();
    for (let i = 0; i < latents.length; i++) latents[i]! *= s.scheduler.initNoiseSigma;
    const hidden = await this.encodePrompts(s.prompts, o.negativePrompt, s.guidance, o.placeholderEmbeddings);
    const out = await denoise({
      unet: this.unet,
      scheduler: s.scheduler,
      timesteps: s.scheduler.timesteps,
      latents: { dims: s.latentDims, data: latents },
      hidden,
      guidance: s.guidance,
      noise: s.noise,
      onProgress: o.onProgress,
    });
    return this.finish(out, s.seeds);
  }

  /**
   * Image-to-image (SDEdit), as diffusers' img2img: of a `steps` schedule the last round(steps*strength)
   * timesteps run (int(steps*strength), as diffusers truncates), starting from the encoded image noised to
   * the first of them. strength 0 runs no step: the result is the image through a VAE round trip.
   */
  async imageToImage(o: ImageToImageOptions): Promise<SampleResult> {
    const strength = o.strength ?? 0.8;
    if (!(strength >= 0 && strength <= 1)) throw new DiffusionError('BAD_ARGUMENT', `strength must be in [0, 1], got ${strength}`);
    const s = this.prepare(o);
    const init = await this.encodeImages(o.image, s.batch);
    const all = s.scheduler.timesteps;
    const initSteps = Math.min(Math.floor(s.steps * strength), s.steps);
    const timesteps = all.slice(s.steps - initSteps);
    const noise = s.noise.draw();
    if (!timesteps.length) return this.finish({ latents: init }, s.seeds);
    const latents = s.scheduler.addNoise(init.data, noise, timesteps[0]!);
    const hidden = await this.encodePrompts(s.prompts, o.negativePrompt, s.guidance, o.placeholderEmbeddings);
    const out = await denoise({
      unet: this.unet,
      scheduler: s.scheduler,
      timesteps,
      latents: { dims: s.latentDims, data: latents },
      hidden,
      guidance: s.guidance,
      noise: s.noise,
      onProgress: o.onProgress,
    });
    return this.finish(out, s.seeds);
  }

  /**
   * Inpainting by masked latent blending (no inpainting model needed): text-to-image from noise, and after
   * every step the known region (mask 0) is replaced by the original latents noised to the next timestep
   * with the image's own initial noise, and by the original latents themselves after the last step.
   */
  async inpaint(o: InpaintOptions): Promise<SampleResult> {
    const s = this.prepare(o);
    const init = await this.encodeImages(o.image, s.batch);
    const masks = Array.isArray(o.mask) ? (o.mask as MaskPixels[]) : Array.from({ length: s.batch }, () => o.mask as MaskPixels);
    if (masks.length !== s.batch) throw new DiffusionError('BAD_ARGUMENT', `${masks.length} masks for a batch of ${s.batch} images`);
    const [, c = 0, h = 0, w = 0] = s.latentDims;
    const plane = h * w;
    const repaint = new Float32Array(s.batch * plane);
    masks.forEach((m, i) => {
      if (m.width !== this.bundle.sampleSize || m.height !== this.bundle.sampleSize)
        throw new DiffusionError('BAD_ARGUMENT', `mask ${i} is ${m.width}x${m.height}; the bundle samples ${this.bundle.sampleSize}x${this.bundle.sampleSize}`);
      repaint.set(maskToLatentGrid(m, this.bundle.vaeScaleFactor).data, i * plane);
    });
    const noise = s.noise.draw();
    const latents = new Float32Array(noise.length);
    for (let i = 0; i < latents.length; i++) latents[i] = noise[i]! * s.scheduler.initNoiseSigma;
    const timesteps = s.scheduler.timesteps;
    const hidden = await this.encodePrompts(s.prompts, o.negativePrompt, s.guidance, o.placeholderEmbeddings);
    const afterStep = (x: Float32Array, index: number): void => {
      const next = timesteps[index + 1];
      const known = next === undefined ? init.data : s.scheduler.addNoise(init.data, noise, next);
      for (let b = 0; b < s.batch; b++) {
        for (let k = 0; k < c; k++) {
          const base = (b * c + k) * plane;
          for (let p = 0; p < plane; p++) {
            const m = repaint[b * plane + p]!;
            x[base + p] = m * x[base + p]! + (1 - m) * known[base + p]!;
          }
        }
      }
    };
    const out = await denoise({
      unet: this.unet,
      scheduler: s.scheduler,
      timesteps,
      latents: { dims: s.latentDims, data: latents },
      hidden,
      guidance: s.guidance,
      noise: s.noise,
      onProgress: o.onProgress,
      afterStep,
    });
    return this.finish(out, s.seeds);
  }

  /** Scaled latents [B,C,h,w] -> RGB images. */
  async decodeLatents(latents: FloatTensor): Promise<RgbPixels[]> {
    return tensorToImages(await this.vaeDecoder.decode(latents));
  }

  /** RGB images at native size -> scaled latents (the mean of the encoder's distribution). */
  async encodeImages(image: RgbPixels | readonly RgbPixels[], batch: number): Promise<FloatTensor> {
    const list = Array.isArray(image) ? (image as RgbPixels[]) : Array.from({ length: batch }, () => image as RgbPixels);
    if (list.length !== batch) throw new DiffusionError('BAD_ARGUMENT', `${list.length} images for a batch of ${batch}`);
    const n = this.bundle.sampleSize;
    list.forEach((img, i) => {
      if (img.width !== n || img.height !== n)
        throw new DiffusionError(
          'BAD_ARGUMENT',
          `image ${i} is ${img.width}x${img.height}; the bundle works at ${n}x${n} (resize or crop it first, e.g. @dynasyn/imaging fitToSquare)`,
        );
    });
    this.vaeEncoder ??= await VaeEncoder.create(this.bundle, this.runtime);
    return this.vaeEncoder.encode(imagesToTensor(list));
  }

  async release(): Promise<void> {
    await Promise.all([this.textEncoder.release(), this.unet.release(), this.vaeDecoder.release(), this.vaeEncoder?.release()]);
  }

  private prepare(o: SampleOptions): {
    prompts: string[];
    batch: number;
    steps: number;
    guidance: number;
    scheduler: Scheduler;
    seeds: number[];
    noise: BatchNoise;
    latentDims: number[];
  } {
    const prompts = promptList(o);
    const steps = o.steps ?? 50;
    if (!Number.isInteger(steps) || steps < 1 || steps > this.bundle.scheduler.numTrainTimesteps) {
      throw new DiffusionError('BAD_ARGUMENT', `steps must be an integer in [1, ${this.bundle.scheduler.numTrainTimesteps}], got ${steps}`);
    }
    const guidance = o.guidance ?? 7.5;
    if (!Number.isFinite(guidance) || guidance < 0) throw new DiffusionError('BAD_ARGUMENT', `guidance must be a finite number >= 0, got ${guidance}`);
    const name = o.scheduler ?? 'ddim';
    if (!SCHEDULER_KINDS.includes(name)) throw new DiffusionError('BAD_ARGUMENT', `unknown scheduler ${String(name)} (use ${SCHEDULER_KINDS.join(', ')})`);
    const scheduler = createScheduler(name, this.bundle.scheduler, o.eta !== undefined ? { eta: o.eta } : {});
    scheduler.setTimesteps(steps);
    const side = this.bundle.sampleSize / this.bundle.vaeScaleFactor;
    const latentDims = [prompts.length, this.bundle.latentChannels, side, side];
    const seeds = seedsFor(prompts.length, o.seed);
    return {
      prompts,
      batch: prompts.length,
      steps,
      guidance,
      scheduler,
      seeds,
      noise: new BatchNoise(seeds, this.bundle.latentChannels * side * side),
      latentDims,
    };
  }

  private async finish(out: DenoiseResult, seeds: number[]): Promise<SampleResult> {
    return { images: await this.decodeLatents(out.latents), latents: out.latents, seeds, ...(out.attention ? { attention: out.attention } : {}) };
  }
}

function promptList(o: SampleOptions): string[] {
  if (o.prompts !== undefined) {
    if (o.prompt !== undefined) throw new DiffusionError('BAD_ARGUMENT', 'give either prompt or prompts, not both');
    if (!o.prompts.length) throw new DiffusionError('BAD_ARGUMENT', 'prompts is empty');
    if (o.batch !== undefined && o.batch !== o.prompts.length)
      throw new DiffusionError('BAD_ARGUMENT', `batch ${o.batch} differs from the ${o.prompts.length} prompts`);
    return [...o.prompts];
  }
  const batch = o.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) throw new DiffusionError('BAD_ARGUMENT', `batch must be a positive integer, got ${batch}`);
  return Array.from({ length: batch }, () => o.prompt ?? '');
}
