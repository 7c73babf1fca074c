/**
 * onnxruntime-node sessions for a bundle's models, and the conversions at their boundary: the bundle's
 * models may declare float16 inputs/outputs (fp16 exports) and int32 or int64 token ids / timesteps, while
 * the pipelines work in float32 and JS numbers. Callers never see ort.Tensor types.
 */
import * as ort from 'onnxruntime-node';
import { floatToHalf, halfToFloat } from '@dynasyn/ort-training';
import { DiffusionError } from '../errors.js';
import type { FloatTensor } from '../tensor.js';
import type { RuntimeOptions } from '../types.js';

export type ElementType = 'float32' | 'float16' | 'int32' | 'int64' | 'float64';

/** What the model declares about one input or output. */
export interface ValueSpec {
  name: string;
  type: ElementType;
  /** Declared dims; symbolic ones are strings, unknown ones -1. */
  shape: (number | string)[];
}

/** A session plus the declared types of its inputs and outputs. */
export class ModelSession {
  private constructor(
    readonly session: ort.InferenceSession,
    /** File (or label) the session was created from, for error messages. */
    readonly label: string,
    readonly inputs: ValueSpec[],
    readonly outputs: ValueSpec[],
  ) {}

  /** Session from a model file (external data resolves beside it) or from model bytes (inline weights only). */
  static async create(
    source: string | Uint8Array,
    options: RuntimeOptions = {},
    label = typeof source === 'string' ? source : 'model bytes',
  ): Promise<ModelSession> {
    const providers = options.executionProviders ?? ['cpu'];
    for (const p of providers) {
      if (p !== 'cpu' && p !== 'cuda') throw new DiffusionError('BAD_ARGUMENT', `unknown execution provider ${String(p)} (use cpu or cuda)`);
    }
    const opts: ort.InferenceSession.SessionOptions = {
      executionProviders: [...providers],
      graphOptimizationLevel: 'all',
      // No CPU memory arena: the arena keeps the largest step's intermediates for the session's life and
      // grows by doubling. SD 2.1 at 768 px (a self-attention layer's scores and probabilities are 3.4 GB
      // each at batch 2): a smoke personalization was killed at 23.5 GB in its first draft step with it; one
      // UNet forward at batch 2 peaks at 10.0 GB RSS without.
      enableCpuMemArena: false,
      ...(options.intraOpNumThreads !== undefined ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    };
    let session: ort.InferenceSession;
    try {
      session = typeof source === 'string' ? await ort.InferenceSession.create(source, opts) : await ort.InferenceSession.create(source, opts);
    } catch (e) {
      const msg = (e as Error).message;
      const hint =
        providers.includes('cuda') && /cuda|shared library|provider/i.test(msg)
          ? ' (the CUDA provider is installed only when onnxruntime-node is installed with network access; use executionProviders ["cpu"])'
          : '';
      throw new DiffusionError('BAD_MODEL', `onnxruntime could not load ${label}: ${msg}${hint}`, { cause: e });
    }
    const spec = (m: ort.InferenceSession.ValueMetadata): ValueSpec => ({
      name: m.name,
      type: (m.isTensor ? m.type : 'float32') as ElementType,
      shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' ? d : String(d))) : [],
    });
    return new ModelSession(session, label, session.inputMetadata.map(spec), session.outputMetadata.map(spec));
  }

  /** The input called `name`, or the first of `fallbacks` present; throws BAD_MODEL naming what is there. */
  input(names: string[], what: string): ValueSpec {
    return pick(this.inputs, names, `${this.label} has no ${what} input (looked for ${names.join(', ')}; it has ${this.inputs.map((i) => i.name).join(', ')})`);
  }

  output(names: string[], what: string): ValueSpec {
    return pick(
      this.outputs,
      names,
      `${this.label} has no ${what} output (looked for ${names.join(', ')}; it has ${this.outputs.map((o) => o.name).join(', ')})`,
    );
  }

  async run(feeds: Record<string, ort.Tensor>, outputs?: string[]): Promise<Record<string, ort.Tensor>> {
    try {
      return (outputs ? await this.session.run(feeds, outputs) : await this.session.run(feeds)) as Record<string, ort.Tensor>;
    } catch (e) {
      const shapes = Object.entries(feeds)
        .map(([k, t]) => `${k}: ${t.type}[${t.dims.join(',')}]`)
        .join('; ');
      throw new DiffusionError('BAD_MODEL', `${this.label} failed to run with ${shapes}: ${(e as Error).message}`, { cause: e });
    }
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function pick(specs: ValueSpec[], names: string[], message: string): ValueSpec {
  for (const n of names) {
    const s = specs.find((x) => x.name === n);
    if (s) return s;
  }
  throw new DiffusionError('BAD_MODEL', message);
}

/** A float input in the element type the model declares (float16 goes as raw bits in a Uint16Array). */
export function floatInput(t: FloatTensor, spec: ValueSpec): ort.Tensor {
  switch (spec.type) {
    case 'float32':
      return new ort.Tensor('float32', t.data, t.dims);
    case 'float16':
      return new ort.Tensor('float16', toHalf(t.data), t.dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(t.data), t.dims);
    default:
      throw new DiffusionError('BAD_MODEL', `input ${spec.name} is ${spec.type}; a float tensor was expected`);
  }
}

/** Integers (token ids, timesteps) in the model's declared int32/int64 (or float) input type. */
export function numberInput(values: ArrayLike<number>, dims: number[], spec: ValueSpec): ort.Tensor {
  switch (spec.type) {
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(Math.round(v)))), dims);
    case 'int32':
      return new ort.Tensor(
        'int32',
        Int32Array.from(values, (v) => Math.round(v)),
        dims,
      );
    case 'float32':
      return new ort.Tensor('float32', Float32Array.from(values), dims);
    case 'float16':
      return new ort.Tensor('float16', toHalf(Float32Array.from(values)), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(values), dims);
    default:
      throw new DiffusionError('BAD_MODEL', `input ${spec.name} has unsupported type ${String(spec.type)}`);
  }
}

/** A float32 copy of a float output (onnxruntime's output buffers belong to the run's results). */
export function floatOutput(t: ort.Tensor | undefined, name: string): FloatTensor {
  if (!t) throw new DiffusionError('BAD_MODEL', `the model returned no ${name} output`);
  const dims = [...t.dims];
  if (t.type === 'float32') return { dims, data: (t.data as Float32Array).slice() };
  if (t.type === 'float16') {
    const src = t.data as unknown as { buffer: ArrayBufferLike; byteOffset: number; length: number };
    return { dims, data: fromHalf(new Uint16Array(src.buffer, src.byteOffset, src.length)) };
  }
  if (t.type === 'float64') return { dims, data: Float32Array.from(t.data as Float64Array) };
  throw new DiffusionError('BAD_MODEL', `output ${name} is ${t.type}; a float tensor was expected`);
}

export function toHalf(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = floatToHalf(src[i]!);
  return out;
}

export function fromHalf(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]!);
  return out;
}
