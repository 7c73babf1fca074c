/**
 * Test support: build one-op models, run them through onnxruntime-node, and compare the derived gradients
 * with central finite differences of the same onnxruntime forward pass.
 */
import * as ort from 'onnxruntime-node';
import { Graph, attrs, type AttrValue, type Initializer } from '../graph.js';
import { serializeModel, type OnnxModel } from '../model.js';
import { deriveGradientGraph } from '../autodiff.js';
import { DataType, numel, type HostTensor, fromNumbers, tensorBytes } from '../tensor.js';

export interface TestInput {
  name: string;
  dtype?: number;
  dims: number[];
  values?: number[];
  int?: boolean;
}
export interface TestNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue | undefined>;
  domain?: string;
}

/** Deterministic uniform(-1, 1) values (mulberry32). */
export function randomValues(n: number, seed: number, lo = -1, hi = 1): number[] {
  let a = seed >>> 0;
  return Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  });
}

export function buildModel(spec: {
  inputs: TestInput[];
  nodes: TestNode[];
  outputs: string[];
  constants?: Record<string, HostTensor>;
  opset?: number;
}): OnnxModel {
  const g = new Graph({ name: 'test' });
  for (const i of spec.inputs) g.addInput({ name: i.name, dtype: i.dtype ?? DataType.FLOAT, shape: i.dims });
  for (const [name, t] of Object.entries(spec.constants ?? {})) {
    const init: Initializer = { name, dtype: t.dtype, dims: t.dims, data: tensorBytes(t) };
    g.addInitializer(init);
  }
  for (const n of spec.nodes) g.addNode({ opType: n.op, inputs: n.inputs, outputs: n.outputs, attributes: attrs(n.attrs ?? {}), domain: n.domain ?? '' });
  for (const o of spec.outputs) g.addOutput({ name: o, dtype: 0 });
  return {
    irVersion: 8,
    opsetImports: [{ domain: '', version: spec.opset ?? 17 }],
    producerName: 'test',
    producerVersion: '',
    graph: g,
    metadata: {},
    extra: {},
  };
}

const ORT_TYPES: Record<number, ort.Tensor.Type> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.INT64]: 'int64',
  [DataType.INT32]: 'int32',
  [DataType.BOOL]: 'bool',
  [DataType.FLOAT16]: 'float16',
};

export function toOrt(t: HostTensor): ort.Tensor {
  const type = ORT_TYPES[t.dtype];
  if (!type) throw new Error(`no onnxruntime type for ${t.dtype}`);
  return new ort.Tensor(type, t.dtype === DataType.BOOL ? (Uint8Array.from(t.data as Uint8Array) as unknown as boolean[]) : (t.data as never), t.dims);
}

export async function session(model: OnnxModel): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(serializeModel(model), { graphOptimizationLevel: 'disabled' });
}

export async function run(s: ort.InferenceSession, feeds: Record<string, HostTensor>): Promise<Record<string, number[]>> {
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrt(v)])));
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v.data as ArrayLike<number | bigint>, Number)]));
}

export interface GradCheckResult {
  /** Max over compared elements of |analytic - numeric| / max(1, |numeric|) ... per wrt tensor. */
  maxError: Record<string, number>;
  analytic: Record<string, number[]>;
  numeric: Record<string, number[]>;
}

/**
 * Wrap `out` in loss = ReduceSum(out * R) with a fixed random R, derive d loss / d wrt, and compare every
 * element with a central difference of the loss (step `eps`). With DOUBLE inputs the comparison is tight
 * (truncation error O(eps^2)); with FLOAT it is bounded by rounding, about 1e-7 |loss| / eps.
 */
export async function gradcheck(spec: {
  inputs: TestInput[];
  nodes: TestNode[];
  out: string;
  wrt: string[];
  constants?: Record<string, HostTensor>;
  opset?: number;
  eps?: number;
  seed?: number;
  outDims: number[];
  outDtype?: number;
}): Promise<GradCheckResult> {
  const dtype = spec.outDtype ?? DataType.DOUBLE;
  const seed = spec.seed ?? 7;
  const R = fromNumbers(dtype, spec.outDims, randomValues(numel(spec.outDims), seed + 1000));
  const loss = buildModel({
    inputs: spec.inputs,
    opset: spec.opset,
    constants: { ...spec.constants, __R: R },
    nodes: [
      ...spec.nodes,
      { op: 'Mul', inputs: [spec.out, '__R'], outputs: ['__prod'] },
      { op: 'ReduceSum', inputs: ['__prod'], outputs: ['__loss'], attrs: { keepdims: 0 } },
    ],
    outputs: ['__loss'],
  });
  const feeds: Record<string, HostTensor> = {};
  spec.inputs.forEach((i, k) => {
    const dt = i.dtype ?? DataType.FLOAT;
    feeds[i.name] = fromNumbers(dt, i.dims, i.values ?? randomValues(numel(i.dims), seed + k * 31));
  });
  const derived = deriveGradientGraph(loss, { loss: '__loss', wrt: spec.wrt });
  const grads = await run(await session(derived.model), feeds);
  const fwd = await session(loss);
  const eps = spec.eps ?? (dtype === DataType.DOUBLE ? 1e-5 : 1e-2);
  const result: GradCheckResult = { maxError: {}, analytic: {}, numeric: {} };
  for (const w of spec.wrt) {
    const base = feeds[w]!;
    const analytic = grads[derived.gradientOutputs[w]!]!;
    const numeric: number[] = [];
    for (let k = 0; k < numel(base.dims); k++) {
      const f = async (delta: number) => {
        const vals = Array.from(base.data as ArrayLike<number>, Number);
        vals[k]! += delta;
        return (await run(fwd, { ...feeds, [w]: fromNumbers(base.dtype, base.dims, vals) })).__loss![0]!;
      };
      numeric.push(((await f(eps)) - (await f(-eps))) / (2 * eps));
    }
    result.analytic[w] = analytic;
    result.numeric[w] = numeric;
    const scale = Math.max(1, ...numeric.map(Math.abs));
    result.maxError[w] = Math.max(0, ...numeric.map((n, k) => Math.abs(n - analytic[k]!) / scale));
  }
  return result;
}
