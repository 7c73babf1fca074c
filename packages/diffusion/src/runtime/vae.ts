/**
 * VAE encoder and decoder sessions. The scaling factor is applied INSIDE: `VaeEncoder.encode` returns
 * z = latent * vaeScalingFactor (what the UNet sees) and `VaeDecoder.decode` takes such z, so callers never
 * handle the factor. Images are [B,3,H,W] in [-1,1].
 */
import { DiffusionError } from '../errors.js';
import { size, type FloatTensor } from '../tensor.js';
import type { ModelBundle, RuntimeOptions } from '../types.js';
import { loadModel } from '@dynasyn/ort-training';
import { withoutSampling } from '../surgery/deterministic.js';
import { floatInput, floatOutput, ModelSession, type ValueSpec } from './session.js';
import { materialize, removeTempDir } from './surgery.js';

/** How an 8-channel (mean|logvar) encoder output becomes latents. */
export interface EncodeOptions {
  /**
   * Draw z = mean + exp(logvar / 2) * eps with eps from this source of standard normals (length = latent
   * elements); default: take the mean (deterministic, what diffusers' `latent_dist.mode()` returns).
   */
  sample?: (n: number) => Float32Array;
}

export class VaeEncoder {
  private constructor(
    private readonly session: ModelSession,
    private readonly bundle: ModelBundle,
    private readonly input: ValueSpec,
    private readonly output: ValueSpec,
    private readonly tempDir?: string,
  ) {}

  /** An encoder exported to sample (RandomNormalLike in the graph) is rewritten to give the posterior mean (surgery/deterministic). */
  static async create(bundle: ModelBundle, options: RuntimeOptions = {}): Promise<VaeEncoder> {
    const model = loadModel(bundle.vaeEncoderPath);
    const mean = withoutSampling(model); // the model itself when it draws no noise
    const rewritten = mean !== model ? materialize(mean, 'vae_encoder_mean') : undefined;
    try {
      const s = await ModelSession.create(rewritten?.source ?? bundle.vaeEncoderPath, options, bundle.vaeEncoderPath);
      return new VaeEncoder(
        s,
        bundle,
        s.input(['sample', 'pixel_values'], 'image'),
        s.output(['latent_sample', 'latent_parameters', 'latent_dist'], 'latent'),
        rewritten?.tempDir,
      );
    } catch (e) {
      removeTempDir(rewritten?.tempDir);
      throw e;
    }
  }

  /** images [B,3,H,W] in [-1,1] -> scaled latents [B,C,H/f,W/f]. */
  async encode(images: FloatTensor, options: EncodeOptions = {}): Promise<FloatTensor> {
    const [b, c] = images.dims;
    if (images.dims.length !== 4 || c !== 3) throw new DiffusionError('BAD_ARGUMENT', `VAE encoder expects images [B,3,H,W], got [${images.dims}]`);
    const out = await this.session.run({ [this.input.name]: floatInput(images, this.input) }, [this.output.name]);
    const raw = floatOutput(out[this.output.name], this.output.name);
    const ch = this.bundle.latentChannels;
    const [, rc = 0, h = 0, w = 0] = raw.dims;
    if (rc !== ch && rc !== 2 * ch)
      throw new DiffusionError('BAD_MODEL', `${this.session.label} returns ${rc} channels; expected ${ch} (latents) or ${2 * ch} (mean|logvar)`);
    const plane = h * w;
    const latents = new Float32Array(b! * ch * plane);
    const noise = rc === 2 * ch && options.sample ? options.sample(latents.length) : undefined;
    for (let i = 0; i < b!; i++) {
      for (let k = 0; k < ch; k++) {
        const src = (i * rc + k) * plane,
          logvarAt = (i * rc + ch + k) * plane,
          dst = (i * ch + k) * plane;
        for (let p = 0; p < plane; p++) {
          let z = raw.data[src + p]!;
          if (noise) {
            // diffusers clamps logvar to [-30, 20] before taking the std
            const logvar = Math.min(20, Math.max(-30, raw.data[logvarAt + p]!));
            z += Math.exp(0.5 * logvar) * noise[dst + p]!;
          }
          latents[dst + p] = z * this.bundle.vaeScalingFactor;
        }
      }
    }
    return { dims: [b!, ch, h, w], data: latents };
  }

  async release(): Promise<void> {
    try {
      await this.session.release();
    } finally {
      removeTempDir(this.tempDir);
    }
  }
}

export class VaeDecoder {
  private constructor(
    private readonly session: ModelSession,
    private readonly bundle: ModelBundle,
    private readonly input: ValueSpec,
    private readonly output: ValueSpec,
  ) {}

  static async create(bundle: ModelBundle, options: RuntimeOptions = {}): Promise<VaeDecoder> {
    const s = await ModelSession.create(bundle.vaeDecoderPath, options);
    return new VaeDecoder(s, bundle, s.input(['latent_sample', 'latents', 'z'], 'latent'), s.output(['sample', 'images'], 'image'));
  }

  /** Scaled latents [B,C,h,w] -> images [B,3,h*f,w*f] in [-1,1] (not clamped). */
  async decode(latents: FloatTensor): Promise<FloatTensor> {
    if (latents.dims.length !== 4 || latents.dims[1] !== this.bundle.latentChannels) {
      throw new DiffusionError('BAD_ARGUMENT', `VAE decoder expects latents [B,${this.bundle.latentChannels},h,w], got [${latents.dims}]`);
    }
    const inv = 1 / this.bundle.vaeScalingFactor;
    const z = new Float32Array(size(latents.dims));
    for (let i = 0; i < z.length; i++) z[i] = latents.data[i]! * inv;
    const out = await this.session.run({ [this.input.name]: floatInput({ dims: latents.dims, data: z }, this.input) }, [this.output.name]);
    return floatOutput(out[this.output.name], this.output.name);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
