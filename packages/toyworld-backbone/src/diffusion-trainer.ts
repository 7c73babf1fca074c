/**
 * The diffusion phase: text encoder + UNet trained jointly on the epsilon-prediction objective
 * L = mean((eps_theta(z_t, t, c) - eps)^2), z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps, with z0 the trained
 * VAE's latents times the scaling factor and ~10% empty captions (classifier-free guidance). The UNet's
 * session also differentiates with respect to encoder_hidden_states; that gradient trains the text encoder
 * through its surrogate-loss session.
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ClipTokenizer } from '@dynasyn/diffusion';
import { AdamW, DataType, loadModel, TrainingSession } from '@dynasyn/ort-training';
import { batchAt, latentSubjectWeights, stackImages, type Example, type ExampleSource } from './data.js';
import { FedWeightsForward } from './forward.js';
import { ModelGroup } from './model-group.js';
import { Rng, stopwatch } from './rng.js';
import { alphasCumprod, TRAIN_TIMESTEPS } from './schedule.js';
import { floatWeights, LOSS, LOSS_WEIGHT, UPSTREAM_GRAD, withMseLoss, withSurrogateLoss } from './training-graphs.js';
import type { PhaseStepLog } from './vae-trainer.js';

export interface DiffusionTrainerOptions {
  /** Bundle whose text_encoder / unet start the training. */
  bundleDir: string;
  /** The trained VAE encoder (frozen). */
  vaeEncoderPath: string;
  scalingFactor: number;
  tokenizer: ClipTokenizer;
  source: ExampleSource;
  seed: number;
  batch: number;
  /** Probability of an empty caption. */
  emptyCaption: number;
  /**
   * Weight of the latent cells on the subjects in the epsilon MSE (data.ts latentSubjectWeights); 1 (the default):
   * plain MSE. Two 12-pixel subjects are ~10% of the latent cells, so plain MSE spends ~90% of its gradient on
   * the background, where the silhouettes are not.
   */
  subjectWeight?: number;
  optimizer: AdamW;
  cacheDir: string;
  sessionOptions: ort.InferenceSession.SessionOptions;
}

export class DiffusionTrainer {
  private readonly abar = alphasCumprod();

  private constructor(
    readonly group: ModelGroup,
    private readonly unet: TrainingSession,
    private readonly text: TrainingSession,
    private readonly textForward: FedWeightsForward,
    private readonly vae: ort.InferenceSession,
    private readonly o: DiffusionTrainerOptions,
    private readonly dims: { latent: number[]; context: number[] },
  ) {}

  static async create(o: DiffusionTrainerOptions): Promise<DiffusionTrainer> {
    const B = o.batch;
    const unetPath = join(o.bundleDir, 'unet/model.onnx'),
      textPath = join(o.bundleDir, 'text_encoder/model.onnx');
    const weighted = (o.subjectWeight ?? 1) !== 1;
    const unetModel = withMseLoss(loadModel(unetPath), 'out_sample', 'target', weighted);
    const [, C, h, w] = unetModel.graph.inputs.find((i) => i.name === 'sample')!.shape!.map(Number) as number[];
    const [, L, D] = unetModel.graph.inputs.find((i) => i.name === 'encoder_hidden_states')!.shape!.map(Number) as number[];
    const latent = [B, C!, h!, w!],
      context = [B, L!, D!];
    const textModel = withSurrogateLoss(loadModel(textPath), 'last_hidden_state');
    const common = { loss: LOSS, cacheDir: o.cacheDir, sessionOptions: o.sessionOptions };
    const unetWeights = floatWeights(unetModel),
      textWeights = floatWeights(textModel);
    const unet = await TrainingSession.create({
      ...common,
      model: unetModel,
      trainable: [...unetWeights, 'encoder_hidden_states'],
      inputShapes: {
        sample: latent,
        timestep: [B],
        encoder_hidden_states: context,
        target: latent,
        ...(weighted ? { [LOSS_WEIGHT]: [B, 1, h!, w!] } : {}),
      },
    });
    const text = await TrainingSession.create({
      ...common,
      model: textModel,
      trainable: textWeights,
      inputShapes: { input_ids: [B, L!], [UPSTREAM_GRAD]: context },
    });
    const group = new ModelGroup([
      { model: 'text_encoder', session: text, weights: textWeights },
      { model: 'unet', session: unet, weights: unetWeights },
    ]);
    const textForward = await FedWeightsForward.create(loadModel(textPath), o.sessionOptions);
    const vae = await ort.InferenceSession.create(o.vaeEncoderPath, o.sessionOptions);
    return new DiffusionTrainer(group, unet, text, textForward, vae, o, { latent, context });
  }

  /** Scaled latents z0 of images [B,3,S,S]: a sample of the VAE's posterior times the scaling factor. */
  async latents(images: Float32Array, rng: Rng): Promise<Float32Array> {
    const [B, C, h, w] = this.dims.latent as [number, number, number, number];
    const S = this.o.source.size;
    const moments = (await this.vae.run({ sample: new ort.Tensor('float32', images, [B, 3, S, S]) })).latent_sample!.data as Float32Array;
    const per = C * h * w,
      z = new Float32Array(B * per);
    for (let b = 0; b < B; b++)
      for (let i = 0; i < per; i++) {
        const logvar = Math.min(20, Math.max(-30, moments[b * 2 * per + per + i]!));
        z[b * per + i] = (moments[b * 2 * per + i]! + Math.exp(0.5 * logvar) * rng.normal()) * this.o.scalingFactor;
      }
    return z;
  }

  async step(step: number): Promise<PhaseStepLog> {
    const { source, seed, batch: B, tokenizer } = this.o;
    const clock = stopwatch();
    const examples = await batchAt(source, seed + 1, step, B); // its own stream: not the VAE phase's images
    const msData = clock();
    const rng = new Rng(`${seed}/diffusion/${step}`);
    const z0 = await this.latents(stackImages(examples), rng);
    const msVae = clock();
    const [, C, h, w] = this.dims.latent as [number, number, number, number];
    const per = C * h * w;
    const L = this.dims.context[1]!;
    const zt = new Float32Array(B * per),
      eps = new Float32Array(B * per);
    const timesteps = new BigInt64Array(B),
      ids = new BigInt64Array(B * L);
    for (let b = 0; b < B; b++) {
      const t = rng.int(TRAIN_TIMESTEPS);
      timesteps[b] = BigInt(t);
      const a = Math.sqrt(this.abar[t]!),
        s = Math.sqrt(1 - this.abar[t]!);
      for (let i = 0; i < per; i++) {
        const e = rng.normal();
        eps[b * per + i] = e;
        zt[b * per + i] = a * z0[b * per + i]! + s * e;
      }
      const caption = rng.uniform() < this.o.emptyCaption ? '' : examples[b]!.caption;
      tokenizer.encodePadded(caption, L).forEach((id, i) => (ids[b * L + i] = BigInt(id)));
    }
    const idsTensor = new ort.Tensor('int64', ids, [B, L]);
    const context = await this.textForward.run({ input_ids: idsTensor }, this.group.weightsOf('text_encoder'), 'last_hidden_state');
    const msTextForward = clock();
    this.unet.setTrainable('encoder_hidden_states', { dtype: DataType.FLOAT, dims: this.dims.context, data: context });
    const u = await this.unet.step({
      sample: new ort.Tensor('float32', zt, this.dims.latent),
      timestep: new ort.Tensor('int64', timesteps, [B]),
      target: new ort.Tensor('float32', eps, this.dims.latent),
      ...this.lossWeightFeed(examples),
    });
    const msUnet = clock();
    const t = await this.text.step({ input_ids: idsTensor, [UPSTREAM_GRAD]: u.grads.get('encoder_hidden_states')! });
    const msText = clock();
    const info = this.group.update(this.o.optimizer, this.group.gradsOf('unet', u.grads, this.group.gradsOf('text_encoder', t.grads)));
    const msUpdate = clock();
    return { loss: u.loss, terms: { msData, msVae, msTextForward, msUnet, msText, msUpdate }, lr: info.lr, gradNorm: info.gradNorm };
  }

  /** The `loss_weight` feed of a subject-weighted run (none for plain MSE); the toy latents are square. */
  private lossWeightFeed(examples: Example[]): Record<string, ort.Tensor> {
    const sw = this.o.subjectWeight ?? 1;
    if (sw === 1) return {};
    const [, , h, w] = this.dims.latent as [number, number, number, number];
    if (h !== w) throw new Error(`subject-weighted diffusion needs square latents, got ${h}x${w}`);
    return { [LOSS_WEIGHT]: new ort.Tensor('float32', latentSubjectWeights(examples, this.o.source.size, h, sw), [examples.length, 1, h, w]) };
  }

  async release(): Promise<void> {
    await Promise.all([this.unet.release(), this.text.release(), this.textForward.release(), this.vae.release()]);
  }
}
