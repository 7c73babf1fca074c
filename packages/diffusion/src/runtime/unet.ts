/**
 * The UNet session: noise (or v) prediction, optionally with the cross-attention maps exposed by D4's
 * graph surgery (`withAttentionCapture`). Timesteps go in the model's declared type: float models get the
 * value as is; int64/int32 models get it ROUNDED to the nearest integer (Euler's fractional timesteps then
 * condition on the nearest training timestep, which is what an int-timestep export can take).
 */
import { DiffusionError } from '../errors.js';
import { size, type FloatTensor } from '../tensor.js';
import type { AttentionMaps, ModelBundle, RuntimeOptions } from '../types.js';
import { floatInput, floatOutput, ModelSession, numberInput, type ValueSpec } from './session.js';
import { attentionCaptureModel, removeTempDir, type UnetAttentionOptions } from './surgery.js';

export interface UnetOptions extends RuntimeOptions {
  /** Expose averaged cross-attention probabilities (see AttentionMaps); default: off. */
  captureAttention?: UnetAttentionOptions;
  /** Directory for the rewritten model (with external data) when a surgery applies; default: a temp dir removed on release. */
  cacheDir?: string;
}

export interface UnetOutput {
  /** The model's prediction [B,C,h,w] (epsilon or v, per the scheduler config). */
  noise: FloatTensor;
  attention?: AttentionMaps;
}

export class Unet {
  private constructor(
    private readonly session: ModelSession,
    private readonly sample: ValueSpec,
    private readonly timestep: ValueSpec,
    private readonly hidden: ValueSpec,
    private readonly out: ValueSpec,
    private readonly attention?: { output: string; height: number; width: number },
    private readonly tempDir?: string,
  ) {}

  static async create(bundle: ModelBundle, options: UnetOptions = {}): Promise<Unet> {
    let source: string | Uint8Array = bundle.unetPath;
    let attention: { output: string; height: number; width: number } | undefined;
    let tempDir: string | undefined;
    if (options.captureAttention) {
      const captured = attentionCaptureModel(bundle, options.captureAttention, options.cacheDir);
      source = captured.source;
      tempDir = captured.tempDir;
      attention = { output: captured.output, height: captured.height, width: captured.width };
    }
    try {
      const s = await ModelSession.create(source, options, bundle.unetPath);
      const out = s.outputs.find((o) => o.name === 'out_sample') ?? s.outputs.find((o) => o.name !== attention?.output);
      if (!out) throw new DiffusionError('BAD_MODEL', `${bundle.unetPath} has no out_sample output`);
      return new Unet(
        s,
        s.input(['sample'], 'sample'),
        s.input(['timestep', 'timesteps', 't'], 'timestep'),
        s.input(['encoder_hidden_states'], 'encoder_hidden_states'),
        out,
        attention,
        tempDir,
      );
    } catch (e) {
      removeTempDir(tempDir);
      throw e;
    }
  }

  /** Element type the model takes timesteps in ('int64' models see rounded timesteps). */
  get timestepType(): string {
    return this.timestep.type;
  }

  /**
   * latents [B,C,h,w] (already scaled by the scheduler's scaleModelInput), one timestep for all rows or one
   * per row, encoderHiddenStates [B,77,D].
   */
  async predict(latents: FloatTensor, timesteps: number | readonly number[], encoderHiddenStates: FloatTensor): Promise<UnetOutput> {
    const b = latents.dims[0]!;
    if (latents.dims.length !== 4) throw new DiffusionError('BAD_ARGUMENT', `UNet sample must be [B,C,h,w], got [${latents.dims}]`);
    if (encoderHiddenStates.dims[0] !== b)
      throw new DiffusionError('BAD_ARGUMENT', `encoder_hidden_states batch ${encoderHiddenStates.dims[0]} differs from latents batch ${b}`);
    const ts = typeof timesteps === 'number' ? new Array<number>(b).fill(timesteps) : [...timesteps];
    if (ts.length !== b) throw new DiffusionError('BAD_ARGUMENT', `${ts.length} timesteps for a batch of ${b}`);
    const feeds = {
      [this.sample.name]: floatInput(latents, this.sample),
      [this.timestep.name]: this.timestepTensor(ts),
      [this.hidden.name]: floatInput(encoderHiddenStates, this.hidden),
    };
    const names = [this.out.name, ...(this.attention ? [this.attention.output] : [])];
    const res = await this.session.run(feeds, names);
    const noise = floatOutput(res[this.out.name], this.out.name);
    if (size(noise.dims) !== size(latents.dims)) throw new DiffusionError('BAD_MODEL', `UNet returned [${noise.dims}] for sample [${latents.dims}]`);
    if (!this.attention) return { noise };
    const probs = floatOutput(res[this.attention.output], this.attention.output);
    return { noise, attention: { probs, height: this.attention.height, width: this.attention.width } };
  }

  /** Shape per the declaration: a scalar, a single [1] value (all rows share it), or one per row. */
  private timestepTensor(ts: number[]) {
    const shape = this.timestep.shape;
    if (shape.length === 0) return numberInput([ts[0]!], [], this.timestep);
    if (shape[0] === 1 && ts.length > 1) {
      if (ts.some((t) => t !== ts[0])) throw new DiffusionError('UNSUPPORTED', `this UNet takes one timestep for the whole batch; got ${ts.join(', ')}`);
      return numberInput([ts[0]!], [1], this.timestep);
    }
    return numberInput(ts, [ts.length], this.timestep);
  }

  async release(): Promise<void> {
    await this.session.release();
    removeTempDir(this.tempDir);
  }
}
