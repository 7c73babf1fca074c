/**
 * Emits gradient nodes into a graph while tracking the static type of every tensor it creates (by running
 * the op's own shape inference), so rules can ask for shapes of what they built. Knows the target opset and
 * emits the attribute-or-input form each op needs there.
 */
import { attrInts, attrs, attrString, type AttrValue, type Graph, type Node } from './graph.js';
import { OrtTrainingError } from './errors.js';
import { DataType, fromNumbers, int64s, numel, toNumbers, type HostTensor, scalar } from './tensor.js';
import type { TensorType } from './ops/types.js';
import { lookupOp } from './ops/registry.js';

/**
 * simplify: share equal emitted nodes and small constants (CSE) and compose reshapes of reshapes and
 * transposes of transposes. Exact (no arithmetic changes); off only to test that.
 */
export const builderOptions = { simplify: true };

export class Builder {
  readonly types: Map<string, TensorType>;
  readonly values: Map<string, HostTensor>;
  private scalarCache = new Map<string, string>();
  /** Small constants by value, so that equal shapes/axes are one initializer (and CSE sees equal inputs). */
  private constCache = new Map<string, string>();
  /** Emitted nodes by op, inputs and attributes: an identical request returns the earlier outputs. */
  private emitted = new Map<string, string[]>();
  private producers: Map<string, Node>;
  /** How many forward nodes read each tensor, graph outputs counting as readers. */
  private readers = new Map<string, number>();
  /** The forward node being differentiated, named in emitted node names (for profiles and debugging). */
  scope = '';

  constructor(
    readonly graph: Graph,
    readonly opset: number,
    types: Map<string, TensorType>,
    values: Map<string, HostTensor>,
    private readonly prefix = 'grad',
  ) {
    this.types = types;
    this.values = values;
    this.producers = graph.producers();
    for (const n of graph.nodes) for (const i of n.inputs) if (i) this.readers.set(i, (this.readers.get(i) ?? 0) + 1);
    for (const o of graph.outputs) this.readers.set(o.name, (this.readers.get(o.name) ?? 0) + 1);
  }

  /**
   * Whether `name` is a forward tensor read only by `node` (so a rule may fold its gradient into that node's:
   * no other gradient contribution can reach it).
   */
  onlyReadBy(name: string, node: Node): boolean {
    return this.readers.get(name) === node.inputs.filter((i) => i === name).length;
  }

  /** The node producing `name` (forward or emitted), if any. */
  producer(name: string): Node | undefined {
    return this.producers.get(name);
  }

  type(name: string): TensorType {
    const t = this.types.get(name);
    if (!t) throw new OrtTrainingError('SHAPE_INFERENCE', `no static type known for tensor ${name}`);
    return t;
  }
  dims(name: string): number[] {
    return this.type(name).dims;
  }

  /** Emit one node; returns its output names (types inferred). */
  emit(opType: string, inputs: string[], nOutputs = 1, attributes: Record<string, AttrValue | undefined> = {}, hint = opType): string[] {
    // Common subexpressions: rules often ask for the same reshape, transpose or product of a forward tensor
    // (e.g. the q, k and v projections of one normalized input); every op emitted here is deterministic.
    const key = `${opType}|${nOutputs}|${inputs.join(',')}|${JSON.stringify(attributes)}`;
    const seen = builderOptions.simplify ? this.emitted.get(key) : undefined;
    if (seen) return seen;
    const outputs = Array.from({ length: nOutputs }, (_, i) => this.graph.uniqueName(`${this.prefix}/${hint}${nOutputs > 1 ? `_${i}` : ''}`));
    const node = this.graph.addNode({
      opType,
      inputs,
      outputs,
      attributes: attrs(attributes),
      name: this.graph.uniqueName(`${this.prefix}/${this.scope ? `${this.scope}/` : ''}${hint}_node`),
    });
    const def = lookupOp(node.domain, opType);
    const inTypes = inputs.map((n) => (n ? this.type(n) : undefined));
    const values = inputs.map((n) => (n ? this.values.get(n) : undefined));
    const outTypes = def.infer({ node, opset: this.opset, inputs: inTypes, values });
    outputs.forEach((o, i) => this.types.set(o, outTypes[i]!));
    if (def.evaluate && values.every((v, i) => v !== undefined || !inputs[i])) {
      const folded = def.evaluate({ node, opset: this.opset, inputs: inTypes, values });
      folded?.forEach((v, i) => this.values.set(outputs[i]!, v));
    }
    for (const o of outputs) this.producers.set(o, node);
    this.emitted.set(key, outputs);
    return outputs;
  }

  /**
   * A copy of the forward `node` reading `inputs` (same types as its own), for recomputing a forward tensor
   * in the backward pass instead of keeping it. Never shared with an equal node (that would undo it).
   */
  copyOf(node: Node, inputs: string[]): string[] {
    const outputs = node.outputs.map((o) => this.graph.uniqueName(`${this.prefix}/recompute/${o}`));
    const copy = this.graph.addNode({
      ...node,
      inputs,
      outputs,
      attributes: [...node.attributes],
      name: this.graph.uniqueName(`${this.prefix}/recompute/${node.name}`),
    });
    node.outputs.forEach((o, i) => this.types.set(outputs[i]!, this.type(o)));
    for (const o of outputs) this.producers.set(o, copy);
    return outputs;
  }

  op(opType: string, inputs: string[], attributes: Record<string, AttrValue | undefined> = {}, hint = opType): string {
    return this.emit(opType, inputs, 1, attributes, hint)[0]!;
  }

  /** A constant tensor as an initializer. */
  constant(t: HostTensor, hint = 'const'): string {
    const name = this.graph.addConstant(`${this.prefix}/${hint}`, t);
    this.types.set(name, { dtype: t.dtype, dims: [...t.dims] });
    this.values.set(name, t);
    return name;
  }

  /** A scalar constant of `dtype` (shared between uses). */
  scalar(v: number, dtype: number): string {
    const key = `${dtype}:${Object.is(v, -0) ? '-0' : v}`;
    let name = this.scalarCache.get(key);
    if (!name) {
      name = this.constant(scalar(dtype, v), 'scalar');
      this.scalarCache.set(key, name);
    }
    return name;
  }

  int64s(values: number[], hint = 'ints'): string {
    return this.smallConstant(int64s(values), hint);
  }

  /** A constant made once per `key` (for generated tensors too large to key by value). */
  sharedConstant(key: string, make: () => HostTensor, hint = 'const'): string {
    let name = builderOptions.simplify ? this.constCache.get(key) : undefined;
    if (!name) {
      name = this.constant(make(), hint);
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A small constant, shared with earlier equal ones. */
  private smallConstant(t: HostTensor, hint: string): string {
    if (numel(t.dims) > 256 || !builderOptions.simplify) return this.constant(t, hint);
    const key = `${t.dtype}:${t.dims.join(',')}:${toNumbers(t).join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.constant(t, hint);
      this.constCache.set(key, name);
    }
    return name;
  }

  // ---- common compositions ----
  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  neg(a: string): string {
    return this.op('Neg', [a]);
  }
  /** x * scalar c, in x's element type. */
  scale(x: string, c: number): string {
    return c === 1 ? x : this.mul(x, this.scalar(c, this.type(x).dtype));
  }

  reshape(x: string, dims: number[]): string {
    // A reshape of a reshape (or Flatten/Squeeze/Unsqueeze) reshapes the original tensor.
    const p = builderOptions.simplify ? this.producer(x) : undefined;
    if (p && RESHAPES.has(p.opType) && (p.domain === '' || p.domain === 'ai.onnx') && p.inputs[0] && this.types.has(p.inputs[0])) x = p.inputs[0];
    const cur = this.dims(x);
    if (cur.length === dims.length && cur.every((d, i) => d === dims[i])) return x;
    return this.op('Reshape', [x, this.int64s(dims, 'shape')]);
  }

  transpose(x: string, perm: number[]): string {
    // transpose(transpose(x, p), q) = transpose(x, p o q).
    const p = builderOptions.simplify ? this.producer(x) : undefined;
    if (p && p.opType === 'Transpose' && (p.domain === '' || p.domain === 'ai.onnx') && this.types.has(p.inputs[0]!)) {
      const inner = attrInts(p, 'perm') ?? this.dims(x).map((_, i, a) => a.length - 1 - i);
      perm = perm.map((q) => inner[q]!);
      x = p.inputs[0]!;
    }
    if (perm.every((q, i) => q === i)) return x;
    return this.op('Transpose', [x], { perm });
  }

  /** ReduceSum over `axes` (attribute or input form by opset); no-op for no axes. */
  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    if (axes.length === 0) return x;
    return this.op('ReduceSum', [x, this.int64s(axes, 'axes')], { keepdims: keepdims ? 1 : 0 });
  }

  reduceAxesOp(op: 'ReduceMean' | 'ReduceMax' | 'ReduceMin', x: string, axes: number[], keepdims: boolean): string {
    if (this.opset >= 18) return this.op(op, [x, this.int64s(axes, 'axes')], { keepdims: keepdims ? 1 : 0 });
    return this.op(op, [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  unsqueeze(x: string, axes: number[]): string {
    if (axes.length === 0) return x;
    return this.op('Unsqueeze', [x, this.int64s(axes, 'axes')]);
  }

  /**
   * Reduce a broadcast gradient `g` back to `target` dims (numpy broadcasting): sum leading axes and axes
   * where the target has size 1, then reshape.
   */
  sumToShape(g: string, target: number[]): string {
    const gd = this.dims(g);
    if (gd.length === target.length && gd.every((d, i) => d === target[i])) return g;
    const lead = gd.length - target.length;
    const axes: number[] = [];
    for (let i = 0; i < gd.length; i++) {
      if (i < lead) axes.push(i);
      else if (target[i - lead] === 1 && gd[i] !== 1) axes.push(i);
    }
    // Only leading axes: keepdims=0 lands on the target shape with no Reshape node.
    const onlyLeading = axes.every((a) => a < lead);
    const r = this.reduceSum(g, axes, !onlyLeading);
    return this.reshape(r, target);
  }

  /** Broadcast `x` to `dims`. */
  expand(x: string, dims: number[]): string {
    const cur = this.dims(x);
    if (cur.length === dims.length && cur.every((d, i) => d === dims[i])) return x;
    return this.op('Expand', [x, this.int64s(dims, 'shape')]);
  }

  zeros(type: TensorType): string {
    return this.expand(this.scalar(0, type.dtype), type.dims);
  }

  cast(x: string, dtype: number): string {
    return this.type(x).dtype === dtype ? x : this.op('Cast', [x], { to: dtype });
  }

  /**
   * Sum of several gradient contributions. Contributions that are zero-padded blocks of disjoint ranges of one
   * axis (the gradients of a tensor's slices: GEGLU's two halves, a q/k/v split) are joined by one Concat
   * instead: the Pads and the Sum each write the whole tensor, the Concat writes it once.
   */
  sum(parts: string[]): string {
    if (parts.length === 1) return parts[0]!;
    const joined = builderOptions.simplify ? this.joinPaddedBlocks(parts) : undefined;
    if (joined) return joined;
    return this.op('Sum', parts, {}, 'accum');
  }

  /** `sum`'s join of zero-padded disjoint blocks along one axis (undefined where there are not two such parts). */
  private joinPaddedBlocks(parts: string[]): string | undefined {
    interface Block {
      part: string;
      core: string;
      begin: number;
      size: number;
    }
    const blockOf = (part: string): { axis: number; block: Block } | undefined => {
      const n = this.producers.get(part);
      if (!n || n.opType !== 'Pad' || (n.domain !== '' && n.domain !== 'ai.onnx') || (n.inputs[2] ?? '') !== '' || (n.inputs[3] ?? '') !== '') return undefined;
      if (attrString(n, 'mode', 'constant') !== 'constant') return undefined;
      const padsValue = n.inputs[1] ? this.values.get(n.inputs[1]) : undefined;
      if (!padsValue) return undefined;
      const pads = toNumbers(padsValue),
        r = pads.length / 2,
        core = n.inputs[0]!;
      const axes = [...Array(r).keys()].filter((i) => pads[i] !== 0 || pads[i + r] !== 0);
      if (axes.length !== 1 || pads.some((p) => p < 0)) return undefined;
      const axis = axes[0]!;
      return { axis, block: { part, core, begin: pads[axis]!, size: this.dims(core)[axis]! } };
    };
    const byAxis = new Map<number, Block[]>();
    for (const p of parts) {
      const b = blockOf(p);
      if (b) byAxis.set(b.axis, [...(byAxis.get(b.axis) ?? []), b.block]);
    }
    const best = [...byAxis].sort((a, b) => b[1].length - a[1].length)[0];
    if (!best || best[1].length < 2) return undefined;
    const [axis, blocks] = best;
    blocks.sort((a, b) => a.begin - b.begin);
    if (blocks.some((b, i) => i > 0 && blocks[i - 1]!.begin + blocks[i - 1]!.size > b.begin)) return undefined; // overlapping
    const full = this.dims(parts[0]!),
      dtype = this.type(parts[0]!).dtype;
    const pieces: string[] = [];
    let at = blocks[0]!.begin;
    for (const b of blocks) {
      if (b.begin > at) pieces.push(this.zeros({ dtype, dims: full.map((d, i) => (i === axis ? b.begin - at : d)) }));
      pieces.push(b.core);
      at = b.begin + b.size;
    }
    let joined = this.op('Concat', pieces, { axis }, 'accum_join');
    if (blocks[0]!.begin > 0 || at < full[axis]!) {
      const pads = new Array<number>(2 * full.length).fill(0);
      pads[axis] = blocks[0]!.begin;
      pads[axis + full.length] = full[axis]! - at;
      joined = this.op('Pad', [joined, this.int64s(pads, 'pads')], { mode: 'constant' });
    }
    const used = new Set(blocks.map((b) => b.part));
    const rest = parts.filter((p) => !used.has(p));
    return rest.length ? this.op('Sum', [...rest, joined], {}, 'accum') : joined;
  }

  constFloat(dtype: number, dims: number[], values: number[], hint = 'const'): string {
    return this.smallConstant(fromNumbers(dtype, dims, values), hint);
  }
}

/** Ops that only reinterpret their first input's shape. */
const RESHAPES = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

export { DataType };
