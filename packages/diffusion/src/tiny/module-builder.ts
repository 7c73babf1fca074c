/**
 * Builds ONNX graphs the way torch.onnx names them when exporting a diffusers / transformers module:
 * nodes are named by module scope (`/down_blocks.1/attentions.0/transformer_blocks.0/attn2/Softmax`, a
 * `_k` suffix for the k-th repeat in a scope), their outputs `<node>_output_0`, named parameters by their
 * dotted module path (`down_blocks.0.resnets.0.conv1.weight`), parameters torch rewrites (transposed
 * Linear weights, GroupNorm affine reshaped to [C,1,1]) as anonymous `onnx::MatMul_N` / `onnx::Mul_N`,
 * and small shape / scalar constants as Constant nodes. Graph surgery written against real exports can
 * therefore be tested on the tiny bundle.
 */
import {
  DataType,
  Graph,
  attrs,
  floatToHalf,
  fromNumbers,
  hostToTensorProto,
  initializerFromHost,
  type AttrValue,
  type Dim,
  type HostTensor,
  type Initializer,
  type OnnxModel,
  type ValueInfo,
} from '@dynasyn/ort-training';
import { normals } from './prng.js';

/** Name of the symbolic batch dimension on every graph input and output. */
export const BATCH_DIM = 'batch';

/** A tensor being built: its name and shape, with -1 for the symbolic batch dimension. */
export interface Value {
  name: string;
  shape: number[];
}

/** How a parameter starts: seeded normal with a standard deviation, or a constant fill. */
export type ParamInit = { std: number } | { fill: number };

/** What the real-size generator changes; the defaults build the tiny bundle. */
export interface ModuleBuilderOptions {
  /** Element type of float parameters, constants and outputs: DataType.FLOAT (default) or FLOAT16 (an fp16 export). */
  floatType?: number;
  /** `n` draws from N(0, std^2) of stream `key`; default prng.ts `normals` (the tiny bundle's streams). */
  normals?: (key: string, n: number, std: number) => Float32Array;
  /** Turns a finished parameter into an initializer; default inline bytes (a writer may spill them to a file). */
  store?: (name: string, t: HostTensor) => Initializer;
}

export class ModuleBuilder {
  readonly graph = new Graph({ name: 'torch_jit' });
  readonly floatType: number;
  private readonly scopes: string[] = [];
  private readonly nodeCounts = new Map<string, number>();
  private anonymous = 0;
  private readonly normals: NonNullable<ModuleBuilderOptions['normals']>;
  private readonly store: NonNullable<ModuleBuilderOptions['store']>;

  /** `seedKey` (e.g. `0/unet`) prefixes every parameter's random stream. */
  constructor(
    private readonly seedKey: string,
    anonymousStart = 1000,
    options: ModuleBuilderOptions = {},
  ) {
    this.anonymous = anonymousStart;
    this.floatType = options.floatType ?? DataType.FLOAT;
    this.normals = options.normals ?? normals;
    this.store = options.store ?? initializerFromHost;
  }

  /** Run `fn` inside module scope `name` (a node path segment and a parameter path segment). */
  scoped<R>(name: string, fn: () => R): R {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  /** Dotted module path of the current scope plus `local` (a parameter's name). */
  paramPath(local: string): string {
    return [...this.scopes, local].join('.');
  }

  /** Emit one node named by the current scope; returns its output names. */
  emit(opType: string, inputs: string[], attributes: Record<string, AttrValue | undefined> = {}, nOutputs = 1): string[] {
    const base = `/${this.scopes.map((s) => `${s}/`).join('')}${opType}`;
    const k = this.nodeCounts.get(base) ?? 0;
    this.nodeCounts.set(base, k + 1);
    const name = k === 0 ? base : `${base}_${k}`;
    const outputs = Array.from({ length: nOutputs }, (_, i) => `${name}_output_${i}`);
    this.graph.addNode({ name, opType, inputs, outputs, attributes: attrs(attributes) });
    return outputs;
  }

  op(opType: string, inputs: string[], attributes: Record<string, AttrValue | undefined> = {}): string {
    return this.emit(opType, inputs, attributes)[0]!;
  }

  /** A Constant node holding `t` (torch.onnx's form for shapes, scales and other small constants). */
  constant(t: HostTensor): string {
    return this.op('Constant', [], { value: { tensor: hostToTensorProto('', t) } });
  }
  constInt64(values: number[]): string {
    return this.constant(fromNumbers(DataType.INT64, [values.length], values));
  }
  constInt64Scalar(v: number): string {
    return this.constant(fromNumbers(DataType.INT64, [], [v]));
  }
  /** A float constant in the builder's float type (what torch traces for a Python scalar in an fp16 model). */
  constFloat(v: number): string {
    return this.constant(fromNumbers(this.floatType, [], [v]));
  }
  constFloats(dims: number[], values: ArrayLike<number>): string {
    return this.constant(fromNumbers(this.floatType, dims, values));
  }

  /** Values of parameter `path` (its own seeded stream, see prng.ts). */
  values(path: string, dims: number[], init: ParamInit): Float32Array {
    const n = dims.reduce((a, b) => a * b, 1);
    return 'fill' in init ? new Float32Array(n).fill(init.fill) : this.normals(this.seedOf(path), n, init.std);
  }

  /** Key of parameter `path`'s random stream: `<seed>/<model>/<path>`. */
  seedOf(path: string): string {
    return `${this.seedKey}/${path}`;
  }

  /** A named float parameter `<scope path>.<local>` as an initializer; returns its name. */
  param(local: string, dims: number[], init: ParamInit): string {
    const name = this.paramPath(local);
    this.graph.addInitializer(this.store(name, this.inFloatType({ dtype: DataType.FLOAT, dims, data: this.values(name, dims, init) })));
    return name;
  }

  /** An initializer with a fixed name and value (buffers such as CLIP's position_ids), stored as given. */
  buffer(name: string, t: HostTensor): string {
    this.graph.addInitializer(this.store(name, t));
    return name;
  }

  /** An initializer named like torch.onnx's rewritten parameters: `onnx::<Op>_<N>`. */
  anonymousParam(opType: string, t: HostTensor): string {
    const name = `onnx::${opType}_${this.anonymous++}`;
    this.graph.addInitializer(this.store(name, this.inFloatType(t)));
    return name;
  }

  /** A float32 parameter converted to the builder's float type (round to nearest even for float16). */
  private inFloatType(t: HostTensor): HostTensor {
    if (t.dtype !== DataType.FLOAT || this.floatType === DataType.FLOAT) return t;
    if (this.floatType !== DataType.FLOAT16) throw new Error(`ModuleBuilder: float type ${this.floatType} is not supported`);
    const src = t.data as Float32Array;
    const half = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) half[i] = floatToHalf(src[i]!);
    return { dtype: DataType.FLOAT16, dims: t.dims, data: half };
  }

  /** The batch size of `x` as an int64 scalar: Shape -> Gather(0), as torch traces `x.shape[0]`. */
  batchOf(x: Value): string {
    const shape = this.op('Shape', [x.name]);
    return this.op('Gather', [shape, this.constInt64Scalar(0)], { axis: 0 });
  }

  /**
   * A Reshape target `[batch * mul / div, ...rest]` computed the way torch traces `x.reshape(b, ...)`
   * under a dynamic batch axis: Shape -> Gather -> (Mul|Div) -> Unsqueeze -> Concat with the static rest.
   */
  batchShape(x: Value, rest: number[], scale: { mul?: number; div?: number } = {}): string {
    let b = this.batchOf(x);
    if (scale.mul !== undefined) b = this.op('Mul', [b, this.constInt64Scalar(scale.mul)]);
    if (scale.div !== undefined) b = this.op('Div', [b, this.constInt64Scalar(scale.div)]);
    const b1 = this.op('Unsqueeze', [b, this.constInt64([0])]);
    return this.op('Concat', [b1, this.constInt64(rest)], { axis: 0 });
  }

  /** Reshape `x` to `[batch * mul / div, ...rest]` (shape bookkeeping included). */
  reshapeBatch(x: Value, rest: number[], scale: { mul?: number; div?: number } = {}): Value {
    const target = this.batchShape(x, rest, scale);
    return { name: this.op('Reshape', [x.name, target], { allowzero: 0 }), shape: [-1, ...rest] };
  }

  transpose(x: Value, perm: number[]): Value {
    return { name: this.op('Transpose', [x.name], { perm }), shape: perm.map((p) => x.shape[p]!) };
  }

  /** Rename tensor `from` (a node output) to `to`, e.g. to give a graph output its public name. */
  rename(from: string, to: string): void {
    for (const n of this.graph.nodes) {
      n.outputs = n.outputs.map((o) => (o === from ? to : o));
      n.inputs = n.inputs.map((i) => (i === from ? to : i));
    }
  }

  /**
   * The finished model: opset 17, IR version 8, as torch 1.13 / optimum write SD exports. Outputs take the
   * builder's float type and their value's shape with -1 as BATCH_DIM, unless `dtype` / `shape` say otherwise.
   */
  finish(inputs: ValueInfo[], outputs: { value: Value; name: string; dtype?: number; shape?: Dim[] }[]): OnnxModel {
    for (const v of inputs) this.graph.addInput(v);
    for (const o of outputs) {
      this.rename(o.value.name, o.name);
      this.graph.addOutput({ name: o.name, dtype: o.dtype ?? this.floatType, shape: o.shape ?? o.value.shape.map((d) => (d === -1 ? BATCH_DIM : d)) });
    }
    return {
      irVersion: 8,
      opsetImports: [{ domain: '', version: 17 }],
      producerName: 'dynasyn-create-tiny',
      producerVersion: '1',
      graph: this.graph,
      metadata: {},
      extra: {},
    };
  }
}

/** A graph input with the symbolic batch as its first dimension. */
export const batchedInput = (name: string, dtype: number, rest: number[]): ValueInfo => ({ name, dtype, shape: [BATCH_DIM, ...rest] });
