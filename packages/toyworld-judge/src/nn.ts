/**
 * A small layer builder over ort-training's Graph: the judge's and the CLIP's networks are written once and
 * built twice, as the training graph (loss appended, every weight an initializer that TrainingSession
 * trains) and as the exported inference graph (the trained values as initializers). Parameters start from
 * a seeded stream (N(0, 1/fan_in) for weights) unless `weights` holds a value for them.
 */
import { createRng } from '@dynasyn/toyworld';
import {
  DataType,
  Graph,
  attrs,
  fromNumbers,
  initializerFromHost,
  initializerToHost,
  type AttrValue,
  type Dim,
  type HostTensor,
  type OnnxModel,
} from '@dynasyn/ort-training';

/** A tensor being built: its name and static shape (batch included). */
export interface Value {
  name: string;
  shape: number[];
}

export type ParamInit = { std: number } | { fill: number };

export type Weights = Map<string, HostTensor>;

/** `n` draws of N(0, std^2) from the stream named `key` (Box-Muller over the world's mulberry32). */
export function normals(key: string, n: number, std: number): Float32Array {
  const rng = createRng(key);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng.next())) * std,
      t = 2 * Math.PI * rng.next();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

export class Net {
  readonly graph: Graph;
  /** Names of the float parameters, in creation order (what a TrainingSession trains). */
  readonly params: string[] = [];
  private count = 0;

  /** `seed` names the random streams of fresh parameters; `weights` overrides them (export, resume). */
  constructor(
    name: string,
    private readonly seed: string,
    private readonly weights: Weights = new Map(),
  ) {
    this.graph = new Graph({ name });
  }

  input(name: string, dtype: number, shape: Dim[]): string {
    this.graph.addInput({ name, dtype, shape });
    return name;
  }

  output(v: Value | string, shape: Dim[], dtype: number = DataType.FLOAT): void {
    this.graph.addOutput({ name: typeof v === 'string' ? v : v.name, dtype, shape });
  }

  param(name: string, dims: number[], init: ParamInit): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const given = this.weights.get(name);
    if (given && given.dims.join(',') !== dims.join(',')) throw new Error(`weight ${name} is [${given.dims}], the network wants [${dims}]`);
    const data = given ? (given.data as Float32Array) : 'std' in init ? normals(`${this.seed}/${name}`, n, init.std) : new Float32Array(n).fill(init.fill);
    this.graph.initializers.set(name, initializerFromHost(name, { dtype: DataType.FLOAT, dims, data }));
    this.params.push(name);
    return name;
  }

  constInts(values: number[]): string {
    return this.constant(fromNumbers(DataType.INT64, [values.length], values));
  }

  constFloat(v: number): string {
    return this.constant(fromNumbers(DataType.FLOAT, [], [v]));
  }

  constant(t: HostTensor): string {
    const name = `const_${this.count++}`;
    this.graph.initializers.set(name, initializerFromHost(name, t));
    return name;
  }

  op(opType: string, inputs: string[], attributes: Record<string, AttrValue | undefined> = {}): string {
    const out = `${opType}_${this.count++}`;
    this.graph.addNode({ opType, inputs, outputs: [out], attributes: attrs(attributes), name: `${out}_node` });
    return out;
  }

  /** Conv2d (square kernel `k`, zero padding (k-1)/2) with bias. */
  conv(x: Value, name: string, cout: number, k: number, stride = 1, kernel: [number, number] = [k, k]): Value {
    const [b, cin, h, w] = x.shape as [number, number, number, number];
    const [kh, kw] = kernel;
    const ph = (kh - 1) / 2,
      pw = (kw - 1) / 2;
    const weight = this.param(`${name}.weight`, [cout, cin, kh, kw], { std: 1 / Math.sqrt(cin * kh * kw) });
    const bias = this.param(`${name}.bias`, [cout], { fill: 0 });
    const y = this.op('Conv', [x.name, weight, bias], { kernel_shape: [kh, kw], pads: [ph, pw, ph, pw], strides: [stride, stride] });
    const size = (n: number, p: number, kk: number) => Math.floor((n + 2 * p - kk) / stride) + 1;
    return { name: y, shape: [b, cout, size(h, ph, kh), size(w, pw, kw)] };
  }

  /** GroupNorm as exporters emit it: Reshape [B, G, -1] -> InstanceNormalization -> Reshape -> affine per channel. */
  groupNorm(x: Value, name: string, groups: number): Value {
    const c = x.shape[1]!;
    // 0 copies the batch dimension, so an exported graph takes any batch
    const grouped = this.op('Reshape', [x.name, this.constInts([0, groups, -1])]);
    const ones = this.constant(fromNumbers(DataType.FLOAT, [groups], new Float32Array(groups).fill(1)));
    const zeros = this.constant(fromNumbers(DataType.FLOAT, [groups], new Float32Array(groups)));
    const normed = this.op('InstanceNormalization', [grouped, ones, zeros], { epsilon: { float: 1e-5 } });
    const back = this.op('Reshape', [normed, this.constInts([0, ...x.shape.slice(1)])]);
    const gamma = this.param(`${name}.weight`, [c, 1, 1], { fill: 1 });
    const beta = this.param(`${name}.bias`, [c, 1, 1], { fill: 0 });
    return { name: this.op('Add', [this.op('Mul', [back, gamma]), beta]), shape: x.shape };
  }

  silu(x: Value): Value {
    return { name: this.op('Mul', [x.name, this.op('Sigmoid', [x.name])]), shape: x.shape };
  }

  /** Conv -> GroupNorm -> SiLU. */
  convBlock(x: Value, name: string, cout: number, k: number, stride = 1, groups = 8): Value {
    return this.silu(this.groupNorm(this.conv(x, `${name}.conv`, cout, k, stride), `${name}.norm`, groups));
  }

  /** Linear on [B, in] (MatMul + bias). */
  linear(x: Value, name: string, out: number): Value {
    const [b, cin] = x.shape as [number, number];
    const weight = this.param(`${name}.weight`, [cin, out], { std: 1 / Math.sqrt(cin) });
    const bias = this.param(`${name}.bias`, [out], { fill: 0 });
    return { name: this.op('Add', [this.op('MatMul', [x.name, weight]), bias]), shape: [b, out] };
  }

  concat(xs: Value[], axis: number): Value {
    const shape = [...xs[0]!.shape];
    shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
    return {
      name: this.op(
        'Concat',
        xs.map((x) => x.name),
        { axis },
      ),
      shape,
    };
  }

  /** Mean of [B, C, H, W] over H, W -> [B, C] (opset 17: ReduceMean's axes are an attribute, ReduceSum's an input). */
  spatialMean(x: Value): Value {
    return { name: this.op('ReduceMean', [x.name], { axes: [2, 3], keepdims: 0 }), shape: x.shape.slice(0, 2) };
  }

  /**
   * Mean of features x [B, C, H, W] weighted by a region r [B, 1, H, W] (its soft mask): sum(x r) / (sum(r) + eps),
   * so a subject's features are pooled where the region says it is.
   */
  regionMean(x: Value, region: Value): Value {
    const axes = this.constInts([2, 3]);
    const num = this.op('ReduceSum', [this.op('Mul', [x.name, region.name]), axes], { keepdims: 0 });
    const den = this.op('Add', [this.op('ReduceSum', [region.name, axes], { keepdims: 0 }), this.constFloat(1e-3)]);
    return { name: this.op('Div', [num, den]), shape: x.shape.slice(0, 2) };
  }

  /** Block average of [B, C, H, W] by `f` x `f` cells (AveragePool with kernel = stride = f). */
  blockMean(x: Value, f: number): Value {
    const [b, c, h, w] = x.shape as [number, number, number, number];
    const split = this.op('Reshape', [x.name, this.constInts([0, c, h / f, f, w / f, f])]);
    return { name: this.op('ReduceMean', [split], { axes: [3, 5], keepdims: 0 }), shape: [b, c, h / f, w / f] };
  }

  /** Channels [from, to) of [B, C, ...]. */
  sliceChannels(x: Value, from: number, to: number, axis = 1): Value {
    const shape = [...x.shape];
    shape[axis] = to - from;
    return { name: this.op('Slice', [x.name, this.constInts([from]), this.constInts([to]), this.constInts([axis])]), shape };
  }

  /** The current values of this net's parameters (its initializers). */
  currentWeights(): Weights {
    return new Map(this.params.map((p) => [p, initializerToHost(this.graph.initializers.get(p)!)]));
  }

  model(producer: string): OnnxModel {
    return {
      irVersion: 8,
      opsetImports: [{ domain: '', version: 17 }],
      producerName: producer,
      producerVersion: '1',
      graph: this.graph,
      metadata: {},
      extra: {},
    };
  }
}

/** Parameter count of a weights map. */
export const parameterCount = (w: Weights): number => [...w.values()].reduce((s, t) => s + t.data.length, 0);
