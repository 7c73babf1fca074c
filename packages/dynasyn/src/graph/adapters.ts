/**
 * Low-rank adapters on the attention projections (METHOD.md "Two phases": phase 2 default). Each adapted
 * projection y = x W (a MatMul with a constant 2-D weight) becomes
 *
 *   y = x W + scale * (x A) B,   A [in, r] ~ N(0, (1/r)^2), B [r, out] = 0,   scale = alpha / r
 *
 * so the model starts exactly where phase 1 ended (B = 0) and W is never copied or changed (SD's weights
 * are external data). A's init follows diffusers' LoRALinearLayer (normal, std 1/rank), seeded per tensor.
 *
 * Projections are found by torch.onnx scope names (`.../attn1/to_q/MatMul`, `.../self_attn/q_proj/MatMul`)
 * or, when a graph has no such names, by structure around each attention Softmax: the weighted MatMuls
 * (or Gemms) behind the scores' query and key, behind the value that multiplies the probabilities, and
 * after it. A fused input projection (torch.nn.MultiheadAttention's `in_proj_weight`, one x W [D, 3D]
 * sliced into q, k and v) is found from all three and takes one adapter on the fused product (role
 * `qkv`): x A B adds to q, k and v alike, as an adapter per slice would with B's column blocks.
 * A Gemm with transB=1 (torch's Linear on 2-D inputs) stores W as [out, in]: the spec says `transposed`.
 */
import { DataType, Graph, initializerFromHost, scalar, type HostTensor, type Node, type OnnxModel } from '@dynasyn/ort-training';
import { DiffusionError, GaussianRng } from '@dynasyn/diffusion';
import type { AdapterSpec } from '../types.js';

export type AdapterModel = AdapterSpec['model'];

/** One projection an adapter can attach to. */
export interface AdapterTarget {
  /** The MatMul node. */
  node: string;
  /** Its constant weight initializer [in, out]. */
  weight: string;
  inFeatures: number;
  outFeatures: number;
  role: 'q' | 'k' | 'v' | 'qkv' | 'out';
  /** The weight is stored [out, in] (Gemm with transB=1). */
  transposed: boolean;
  /** Module path for readable adapter names (`down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q`). */
  scope: string;
}

const NAMED_PROJECTION = /(?:^|[/.])(to_q|to_k|to_v|to_out|q_proj|k_proj|v_proj|out_proj)(?:\.\d+)?\/[^/]*MatMul[^/]*$/;
const ROLE: Record<string, AdapterTarget['role']> = { to_q: 'q', q_proj: 'q', to_k: 'k', k_proj: 'k', to_v: 'v', v_proj: 'v', to_out: 'out', out_proj: 'out' };
/** Ops that carry a projection's output to the attention product unchanged up to layout or scaling. */
const PASS_FIRST = new Set(['Reshape', 'Transpose', 'Cast', 'Identity', 'Squeeze', 'Unsqueeze', 'Dropout', 'Gather', 'Slice', 'Split']);
const PASS_ALL = new Set(['Mul', 'Div', 'Add', 'Sub']);

/** The constant 2-D weight of a MatMul (x W) or of a Gemm (x W or x W^T, alpha 1, x not transposed). */
function weightOf(g: Graph, n: Node): { name: string; dims: number[]; transposed: boolean } | undefined {
  if ((n.opType !== 'MatMul' && n.opType !== 'Gemm') || (n.domain !== '' && n.domain !== 'ai.onnx')) return undefined;
  const attr = (name: string) => n.attributes.find((a) => a.name === name);
  if (n.opType === 'Gemm' && (Number(attr('transA')?.i ?? 0) !== 0 || (attr('alpha')?.f ?? 1) !== 1)) return undefined;
  const w = g.initializers.get(n.inputs[1] ?? '');
  if (!w || w.dims.length !== 2 || !(w.dtype === DataType.FLOAT || w.dtype === DataType.FLOAT16 || w.dtype === DataType.DOUBLE)) return undefined;
  return { name: w.name, dims: w.dims, transposed: n.opType === 'Gemm' && Number(attr('transB')?.i ?? 0) === 1 };
}

const scopeOf = (n: Node, weight: string): string => {
  const s = n.name.replace(/^\//, '').replace(/\/[^/]*(MatMul|Gemm)[^/]*$/, '');
  return s && s !== n.name.replace(/^\//, '') ? s : weight;
};

function target(g: Graph, n: Node, role: AdapterTarget['role']): AdapterTarget {
  const w = weightOf(g, n)!;
  const [inFeatures, outFeatures] = (w.transposed ? [w.dims[1], w.dims[0]] : w.dims) as [number, number];
  return { node: n.name, weight: w.name, inFeatures, outFeatures, role, scope: scopeOf(n, w.name), transposed: w.transposed };
}

/** The first node behind `tensor` (through layout/scaling ops) that satisfies `found`. */
function walkBack(producers: Map<string, Node>, tensor: string, found: (n: Node) => boolean, depth = 12): Node | undefined {
  const p = producers.get(tensor);
  if (!p || depth === 0) return undefined;
  if (found(p)) return p;
  const next = PASS_FIRST.has(p.opType) ? p.inputs.slice(0, 1) : PASS_ALL.has(p.opType) ? p.inputs : [];
  for (const x of next) {
    const hit = x ? walkBack(producers, x, found, depth - 1) : undefined;
    if (hit) return hit;
  }
  return undefined;
}

/** The first node after `tensor` (through layout ops) that satisfies `found`. */
function walkForward(consumers: Map<string, Node[]>, tensor: string, found: (n: Node) => boolean, depth = 12): Node | undefined {
  for (const c of consumers.get(tensor) ?? []) {
    if (found(c)) return c;
    if (depth > 0 && (PASS_FIRST.has(c.opType) || PASS_ALL.has(c.opType))) {
      const hit = walkForward(consumers, c.outputs[0]!, found, depth - 1);
      if (hit) return hit;
    }
  }
  return undefined;
}

function structuralTargets(g: Graph): AdapterTarget[] {
  const producers = g.producers();
  const consumers = g.consumers();
  const weighted = (n: Node) => weightOf(g, n) !== undefined;
  const product = (n: Node) => (n.opType === 'MatMul' || n.opType === 'Einsum' || n.opType === 'Gemm') && !weighted(n);
  const out: AdapterTarget[] = [];
  for (const sm of g.nodes.filter((n) => n.opType === 'Softmax')) {
    const scores = walkBack(producers, sm.inputs[0]!, product);
    const mix = walkForward(consumers, sm.outputs[0]!, product);
    if (!scores || !mix) continue;
    const q = walkBack(producers, scores.inputs[0]!, weighted);
    const k = walkBack(producers, scores.inputs[1]!, weighted);
    const valueSide = mix.inputs.find((x) => x !== sm.outputs[0] && !walkBack(producers, x, (n) => n === sm));
    const v = valueSide ? walkBack(producers, valueSide, weighted) : undefined;
    const o = walkForward(consumers, mix.outputs[0]!, weighted);
    if (q) out.push(target(g, q, 'q'));
    if (k) out.push(target(g, k, 'k'));
    if (v) out.push(target(g, v, 'v'));
    if (o) out.push(target(g, o, 'out'));
  }
  return out;
}

/**
 * The attention projections of `model` (q, k, v, out of every attention: UNet attn1/attn2, text encoder
 * self-attention), in graph order, by scope name when the graph has such names, else by structure; empty
 * when the graph has none.
 */
export function adapterTargets(model: OnnxModel): AdapterTarget[] {
  const g = model.graph;
  const named: AdapterTarget[] = [];
  for (const n of g.nodes) {
    const m = NAMED_PROJECTION.exec(n.name);
    if (m && weightOf(g, n)) named.push(target(g, n, ROLE[m[1]!]!));
  }
  const found = named.length ? named : structuralTargets(g);
  // one node found as several of q, k, v is a fused input projection
  const byNode = new Map<string, AdapterTarget>();
  for (const t of found) {
    const prior = byNode.get(t.node);
    if (!prior) byNode.set(t.node, t);
    else if (prior.role !== t.role && prior.role !== 'out' && t.role !== 'out') byNode.set(t.node, { ...prior, role: 'qkv' });
  }
  return [...byNode.values()];
}

/** A copy of `model` whose graph can be edited (weights shared, not copied). */
export function cloneModel(model: OnnxModel): OnnxModel {
  const s = model.graph;
  const graph = new Graph({
    name: s.name,
    nodes: s.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attributes: [...n.attributes] })),
    inputs: s.inputs.map((v) => ({ ...v, ...(v.shape ? { shape: [...v.shape] } : {}) })),
    outputs: s.outputs.map((v) => ({ ...v, ...(v.shape ? { shape: [...v.shape] } : {}) })),
    initializers: new Map(s.initializers),
    valueInfo: new Map(s.valueInfo),
    extra: { ...s.extra },
  });
  return { ...model, opsetImports: model.opsetImports.map((o) => ({ ...o })), metadata: { ...model.metadata }, graph };
}

/** Rewrite every MatMul reading `spec.weight` as x W + scale * (x A) B (A, B: tensors already in the graph). */
function insertAdapter(g: Graph, spec: AdapterSpec, nodes: Node[]): void {
  for (const n of nodes) {
    const y = n.outputs[0]!;
    const x = n.inputs[0]!;
    const base = g.uniqueName(`${y}/lora_base`);
    const xa = g.uniqueName(`${y}/lora_xa`);
    const xab = g.uniqueName(`${y}/lora_xab`);
    const made: Node[] = [{ ...n, outputs: [base] }];
    const mk = (opType: string, inputs: string[], out: string): Node => ({
      name: g.uniqueName(`${n.name}/lora_${opType}`),
      opType,
      domain: '',
      inputs,
      outputs: [out],
      attributes: [],
    });
    // A and B are float32 whatever the weight's type: a float16 model's adapter runs on Cast(x, float)
    const dtype = g.initializers.get(spec.weight)?.dtype ?? DataType.FLOAT;
    const cast = (from: string, to: number, out: string): Node => ({ ...mk('Cast', [from], out), attributes: [{ name: 'to', type: 2, i: to }] });
    let xIn = x;
    if (dtype !== DataType.FLOAT) made.push(cast(x, DataType.FLOAT, (xIn = g.uniqueName(`${y}/lora_x_float`))));
    made.push(mk('MatMul', [xIn, spec.a], xa), mk('MatMul', [xa, spec.b], xab));
    let update = xab;
    if (spec.scale !== 1) {
      update = g.uniqueName(`${y}/lora_scaled`);
      made.push(mk('Mul', [xab, g.addConstant(`${n.name}/lora_scale`, scalar(DataType.FLOAT, spec.scale))], update));
    }
    if (dtype !== DataType.FLOAT) made.push(cast(update, dtype, (update = g.uniqueName(`${y}/lora_update`))));
    made.push(mk('Add', [base, update], y));
    g.replaceNode(n, made);
  }
}

function matmulsReading(g: Graph, weight: string, only?: Set<string>): Node[] {
  return g.nodes.filter((n) => (n.opType === 'MatMul' || n.opType === 'Gemm') && n.inputs[1] === weight && (!only || only.has(n.name)));
}

export interface AddAdaptersOptions {
  rank: number;
  /** update = (alpha / rank) x A B; default rank (scale 1). */
  alpha?: number;
  /** Seed of A's initial values (each tensor draws from its own fork, by name). */
  seed?: number;
}

export interface AdaptedModel {
  model: OnnxModel;
  /** Empty when the graph has no attention projection (then `model` is the input, unchanged). */
  specs: AdapterSpec[];
  /** Start values: A ~ N(0, (1/rank)^2), B = 0. */
  startValues: Map<string, HostTensor>;
}

/**
 * A copy of `model` (one of the bundle's models, names as exported) with an adapter on every projection
 * `adapterTargets` finds; A and B are new graph inputs (trainables fed by the training session).
 */
export function addTrainableAdapters(model: OnnxModel, which: AdapterModel, options: AddAdaptersOptions): AdaptedModel {
  const r = options.rank;
  if (!Number.isInteger(r) || r < 1) throw new DiffusionError('BAD_ARGUMENT', `adapter rank must be a positive integer, got ${r}`);
  const scale = (options.alpha ?? r) / r;
  const out = cloneModel(model);
  const g = out.graph;
  const rng = new GaussianRng(options.seed ?? 0);
  const targets = adapterTargets(model);
  const specs: AdapterSpec[] = [];
  const startValues = new Map<string, HostTensor>();
  const used = new Set<string>();
  const byWeight = new Map<string, AdapterTarget[]>();
  for (const t of targets) byWeight.set(t.weight, [...(byWeight.get(t.weight) ?? []), t]);
  for (const [weight, ts] of byWeight) {
    const t = ts[0]!;
    const w = g.initializers.get(weight)!;
    if (w.dtype !== DataType.FLOAT && w.dtype !== DataType.FLOAT16)
      throw new DiffusionError(
        'UNSUPPORTED',
        `adapter on ${weight} (${t.scope}): only float32 and float16 weights take adapters, this one has ONNX type ${w.dtype}`,
      );
    let base = `lora/${which}/${t.scope}`;
    for (let i = 1; used.has(base); i++) base = `lora/${which}/${t.scope}_${i}`;
    used.add(base);
    const spec: AdapterSpec = { model: which, weight, a: `${base}/A`, b: `${base}/B`, scale, ...(t.transposed ? { transposed: true } : {}) };
    const fork = rng.fork(spec.a);
    const a = new Float32Array(t.inFeatures * r);
    for (let i = 0; i < a.length; i++) a[i] = fork.normal() / r;
    startValues.set(spec.a, { dtype: DataType.FLOAT, dims: [t.inFeatures, r], data: a });
    startValues.set(spec.b, { dtype: DataType.FLOAT, dims: [r, t.outFeatures], data: new Float32Array(r * t.outFeatures) });
    g.addInput({ name: spec.a, dtype: DataType.FLOAT, shape: [t.inFeatures, r] });
    g.addInput({ name: spec.b, dtype: DataType.FLOAT, shape: [r, t.outFeatures] });
    insertAdapter(g, spec, matmulsReading(g, weight, new Set(ts.map((x) => x.node))));
    specs.push(spec);
  }
  g.sortTopologically();
  return { model: out, specs, startValues };
}

/**
 * A copy of `model` with the adapters of `specs` that belong to it (`which`; default: every spec whose
 * weight is an initializer of this model, which must then be unambiguous) inserted with the given A/B
 * values as initializers: the same structure as in training, for sampling with learned adapters.
 */
export function applyAdapters(model: OnnxModel, specs: AdapterSpec[], values: Map<string, HostTensor>, which?: AdapterModel): OnnxModel {
  const out = cloneModel(model);
  const g = out.graph;
  const mine = which ? specs.filter((s) => s.model === which) : specs.filter((s) => g.initializers.has(s.weight));
  if (!which && new Set(mine.map((s) => s.model)).size > 1) {
    throw new DiffusionError('BAD_ARGUMENT', `adapter weights of both the unet and the text_encoder exist in ${g.name}: say which model this is`);
  }
  for (const spec of mine) {
    const nodes = matmulsReading(g, spec.weight);
    if (nodes.length === 0) throw new DiffusionError('BAD_MODEL', `adapter ${spec.a}: no MatMul of ${g.name} reads weight ${spec.weight}`);
    const w = g.initializers.get(spec.weight)!;
    const [inF, outF] = spec.transposed ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
    for (const [name, dims] of [
      [spec.a, [inF, -1]],
      [spec.b, [-1, outF]],
    ] as const) {
      const v = values.get(name);
      if (!v) throw new DiffusionError('BAD_ARGUMENT', `no value for adapter tensor ${name}`);
      if (v.dims.length !== 2 || (dims[0] !== -1 && v.dims[0] !== dims[0]) || (dims[1] !== -1 && v.dims[1] !== dims[1])) {
        throw new DiffusionError('BAD_ARGUMENT', `adapter tensor ${name} is [${v.dims}], which does not fit weight ${spec.weight} [${w.dims}]`);
      }
      if (v.dtype !== DataType.FLOAT) throw new DiffusionError('BAD_ARGUMENT', `adapter tensor ${name} has ONNX type ${v.dtype}; adapters are float32`);
      g.addInitializer(initializerFromHost(name, { ...v, data: v.data.slice() })); // later edits of `values` must not reach the model
    }
    insertAdapter(g, spec, nodes);
  }
  g.sortTopologically();
  return out;
}
