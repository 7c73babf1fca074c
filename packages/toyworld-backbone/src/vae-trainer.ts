/**
 * The VAE phase: encoder and decoder trained as one AutoencoderKL on reconstruction MSE plus a small KL to
 * N(0, 1) (mean over latent elements). The decoder's session differentiates with respect to its input z;
 * the reparameterisation z = mean + exp(logvar / 2) * n and the KL are differentiated here on the host,
 * and the encoder's surrogate-loss session takes the resulting dL/d(moments).
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { AdamW, DataType, loadModel, TrainingSession, type OnnxModel } from '@dynasyn/ort-training';
import { batchAt, stackImages, subjectWeights, type Example, type ExampleSource } from './data.js';
import { FedWeightsForward } from './forward.js';
import { ModelGroup } from './model-group.js';
import { Rng, stopwatch } from './rng.js';
import { floatWeights, LOSS, LOSS_WEIGHT, UPSTREAM_GRAD, withMseLoss, withSurrogateLoss } from './training-graphs.js';

export interface VaeTrainerOptions {
  /** Bundle whose vae_encoder / vae_decoder start the training. */
  bundleDir: string;
  source: ExampleSource;
  seed: number;
  batch: number;
  /** Weight of the KL term (per latent element). */
  klWeight: number;
  /** Reconstruction weight of the subjects' pixels (data.ts subjectWeights); 1 (the default): plain MSE. */
  subjectWeight?: number;
  optimizer: AdamW;
  cacheDir: string;
  sessionOptions: ort.InferenceSession.SessionOptions;
}

export interface PhaseStepLog {
  loss: number;
  terms: Record<string, number>;
  lr: number;
  gradNorm: number;
}

/**
 * The decoder with its reconstruction loss: plain MSE, or with the subjects weighted (data.ts subjectWeights) through
 * a `loss_weight` input [B, 1, S, S] when `subjectWeight` is not 1. Returns the graph and that input's shape, if any.
 */
function decoderWithLoss(decPath: string, subjectWeight: number, B: number, S: number): { model: OnnxModel; weightShape: Record<string, number[]> } {
  const weighted = subjectWeight !== 1;
  return { model: withMseLoss(loadModel(decPath), 'sample', 'target', weighted), weightShape: weighted ? { [LOSS_WEIGHT]: [B, 1, S, S] } : {} };
}

/** The `loss_weight` feed of a batch for decoderWithLoss's graph (none when `subjectWeight` is 1). */
function lossWeightFeed(examples: Example[], S: number, subjectWeight: number): Record<string, ort.Tensor> {
  return subjectWeight !== 1 ? { [LOSS_WEIGHT]: new ort.Tensor('float32', subjectWeights(examples, S, subjectWeight), [examples.length, 1, S, S]) } : {};
}

const LOGVAR_MIN = -30,
  LOGVAR_MAX = 20; // diffusers' DiagonalGaussianDistribution clamp

export class VaeTrainer {
  private constructor(
    readonly group: ModelGroup,
    private readonly encoder: TrainingSession,
    private readonly decoder: TrainingSession,
    private readonly encoderForward: FedWeightsForward,
    private readonly o: VaeTrainerOptions,
    private readonly latentDims: number[],
  ) {}

  static async create(o: VaeTrainerOptions): Promise<VaeTrainer> {
    const S = o.source.size,
      B = o.batch;
    const encPath = join(o.bundleDir, 'vae_encoder/model.onnx'),
      decPath = join(o.bundleDir, 'vae_decoder/model.onnx');
    const latentChannels = Number(loadModel(decPath).graph.inputs[0]!.shape![1]);
    const h = S / 4;
    const latentDims = [B, latentChannels, h, h];
    const enc = withSurrogateLoss(loadModel(encPath), 'latent_sample');
    const { model: dec, weightShape } = decoderWithLoss(decPath, o.subjectWeight ?? 1, B, S);
    const common = { loss: LOSS, cacheDir: o.cacheDir, sessionOptions: o.sessionOptions };
    const encWeights = floatWeights(enc),
      decWeights = floatWeights(dec);
    const encoder = await TrainingSession.create({
      ...common,
      model: enc,
      trainable: encWeights,
      inputShapes: { sample: [B, 3, S, S], [UPSTREAM_GRAD]: [B, 2 * latentChannels, h, h] },
    });
    const decoder = await TrainingSession.create({
      ...common,
      model: dec,
      trainable: [...decWeights, 'latent_sample'],
      inputShapes: { latent_sample: latentDims, target: [B, 3, S, S], ...weightShape },
    });
    const group = new ModelGroup([
      { model: 'vae_encoder', session: encoder, weights: encWeights },
      { model: 'vae_decoder', session: decoder, weights: decWeights },
    ]);
    const forward = await FedWeightsForward.create(loadModel(encPath), o.sessionOptions);
    return new VaeTrainer(group, encoder, decoder, forward, o, latentDims);
  }

  async step(step: number): Promise<PhaseStepLog> {
    const { source, seed, batch: B, klWeight } = this.o;
    const S = source.size;
    const clock = stopwatch();
    const examples = await batchAt(source, seed, step, B);
    const x = stackImages(examples);
    const lossWeight = lossWeightFeed(examples, S, this.o.subjectWeight ?? 1);
    const msData = clock();
    const xTensor = new ort.Tensor('float32', x, [B, 3, S, S]);
    const moments = await this.encoderForward.run({ sample: xTensor }, this.group.weightsOf('vae_encoder'), 'latent_sample');
    const [, C, h, w] = this.latentDims as [number, number, number, number];
    const per = C * h * w;
    const n = new Rng(`${seed}/vae-noise/${step}`).normals(B * per);
    const z = new Float32Array(B * per);
    const std = new Float32Array(B * per);
    let kl = 0;
    for (let b = 0; b < B; b++)
      for (let i = 0; i < per; i++) {
        const mean = moments[b * 2 * per + i]!;
        const logvar = Math.min(LOGVAR_MAX, Math.max(LOGVAR_MIN, moments[b * 2 * per + per + i]!));
        const s = Math.exp(0.5 * logvar);
        std[b * per + i] = s;
        z[b * per + i] = mean + s * n[b * per + i]!;
        kl += 0.5 * (mean * mean + s * s - 1 - logvar);
      }
    kl /= B * per;
    this.decoder.setTrainable('latent_sample', { dtype: DataType.FLOAT, dims: this.latentDims, data: z });
    const msEncoderForward = clock();
    const rec = await this.decoder.step({ target: xTensor, ...lossWeight });
    const msDecoder = clock();
    const dz = rec.grads.get('latent_sample')!.data as Float32Array;
    const upstream = new Float32Array(B * 2 * per);
    const k = klWeight / (B * per);
    for (let b = 0; b < B; b++)
      for (let i = 0; i < per; i++) {
        const j = b * per + i;
        const mean = moments[b * 2 * per + i]!;
        const s = std[j]!;
        upstream[b * 2 * per + i] = dz[j]! + k * mean;
        upstream[b * 2 * per + per + i] = dz[j]! * n[j]! * 0.5 * s + k * 0.5 * (s * s - 1);
      }
    const enc = await this.encoder.step({ sample: xTensor, [UPSTREAM_GRAD]: { dtype: DataType.FLOAT, dims: [B, 2 * C, h, w], data: upstream } });
    const msEncoder = clock();
    const grads = this.group.gradsOf('vae_decoder', rec.grads, this.group.gradsOf('vae_encoder', enc.grads));
    const info = this.group.update(this.o.optimizer, grads);
    const msUpdate = clock();
    return {
      loss: rec.loss + klWeight * kl,
      terms: { mse: rec.loss, kl, msData, msEncoderForward, msDecoder, msEncoder, msUpdate },
      lr: info.lr,
      gradNorm: info.gradNorm,
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release(), this.encoderForward.release()]);
  }
}

export interface DecoderTrainerOptions {
  /** Folder with the trained VAE (vae_encoder frozen, vae_decoder the start). */
  vaeDir: string;
  source: ExampleSource;
  seed: number;
  batch: number;
  /** As VaeTrainerOptions.subjectWeight. */
  subjectWeight?: number;
  optimizer: AdamW;
  cacheDir: string;
  sessionOptions: ort.InferenceSession.SessionOptions;
}

/**
 * Decoder fine-tuning on the frozen encoder's latents (SD's ft-MSE decoder): the latent space, and with it the
 * diffusion phase's training data, does not change, so it may run before, during or after the diffusion phase.
 */
export class DecoderTrainer {
  private constructor(
    readonly group: ModelGroup,
    private readonly decoder: TrainingSession,
    private readonly encoder: ort.InferenceSession,
    private readonly o: DecoderTrainerOptions,
  ) {}

  static async create(o: DecoderTrainerOptions): Promise<DecoderTrainer> {
    const S = o.source.size,
      B = o.batch;
    const decPath = join(o.vaeDir, 'vae_decoder/model.onnx');
    const { model: dec, weightShape } = decoderWithLoss(decPath, o.subjectWeight ?? 1, B, S);
    const latentChannels = Number(dec.graph.inputs[0]!.shape![1]);
    const weights = floatWeights(dec);
    const decoder = await TrainingSession.create({
      model: dec,
      loss: LOSS,
      trainable: weights,
      inputShapes: { latent_sample: [B, latentChannels, S / 4, S / 4], target: [B, 3, S, S], ...weightShape },
      cacheDir: o.cacheDir,
      sessionOptions: o.sessionOptions,
    });
    const encoder = await ort.InferenceSession.create(join(o.vaeDir, 'vae_encoder/model.onnx'), o.sessionOptions);
    return new DecoderTrainer(new ModelGroup([{ model: 'vae_decoder', session: decoder, weights }]), decoder, encoder, o);
  }

  async step(step: number): Promise<PhaseStepLog> {
    const { source, seed, batch: B } = this.o;
    const S = source.size;
    const clock = stopwatch();
    const examples = await batchAt(source, seed + 3, step, B); // its own stream
    const x = stackImages(examples);
    const lossWeight = lossWeightFeed(examples, S, this.o.subjectWeight ?? 1);
    const msData = clock();
    const xTensor = new ort.Tensor('float32', x, [B, 3, S, S]);
    const moments = (await this.encoder.run({ sample: xTensor })).latent_sample!;
    const [, c2, h, w] = moments.dims as number[];
    const per = (c2! / 2) * h! * w!,
      m = moments.data as Float32Array;
    const rng = new Rng(`${seed}/decoder-noise/${step}`);
    const z = new Float32Array(B * per);
    for (let b = 0; b < B; b++)
      for (let i = 0; i < per; i++) {
        const logvar = Math.min(LOGVAR_MAX, Math.max(LOGVAR_MIN, m[b * 2 * per + per + i]!));
        z[b * per + i] = m[b * 2 * per + i]! + Math.exp(0.5 * logvar) * rng.normal();
      }
    const msEncoderForward = clock();
    const r = await this.decoder.step({ latent_sample: new ort.Tensor('float32', z, [B, c2! / 2, h!, w!]), target: xTensor, ...lossWeight });
    const msDecoder = clock();
    const info = this.group.update(this.o.optimizer, this.group.gradsOf('vae_decoder', r.grads));
    return { loss: r.loss, terms: { msData, msEncoderForward, msDecoder, msUpdate: clock() }, lr: info.lr, gradNorm: info.gradNorm };
  }

  async release(): Promise<void> {
    await Promise.all([this.decoder.release(), this.encoder.release()]);
  }
}
