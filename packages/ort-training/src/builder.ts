/**
 * Emits gradient nodes into a graph while tracking the static type of every tensor it creates (by running
 * the op's own shape inference), so rules can ask for shapes of what they built. Knows the target opset and
 * emits the attribute-or-input form each op needs there.
 */
import { attrs, type AttrValue, type Graph } from './graph.js';
import { OrtTrainingError } from './errors.js';
import { DataType, fromNumbers, int64s, type HostTensor, scalar } from './tensor.js';
import type { TensorType } from './ops/types.js';
import { lookupOp } from './ops/registry.js';

export class Builder {
  readonly types: Map<string, TensorType>;
  readonly values: Map<string, HostTensor>;
  private scalarCache = new Map<string, string>();

  constructor(readonly graph: Graph, readonly opset: number, types: Map<string, TensorType>, values: Map<string, HostTensor>, private readonly prefix = 'grad') {
    this.types = types;
    this.values = values;
  }

  type(name: string): TensorType {
    const t = this.types.get(name);
    if (!t) throw new OrtTrainingError('SHAPE_INFERENCE', `no static type known for tensor ${name}`);
    return t;
  }
  dims(name: string): number[] { return this.type(name).dims; }

  /** Emit one node; returns its output names (types inferred). */
  emit(opType: string, inputs: string[], nOutputs = 1, attributes: Record<string, AttrValue | undefined> = {}, hint = opType): string[] {
    const outputs = Array.from({ length: nOutputs }, (_, i) => this.graph.uniqueName(`${this.prefix}/${hint}${nOutputs > 1 ? `_${i}` : ''}`));
    const node = this.graph.addNode({ opType, inputs, outputs, attributes: attrs(attributes), name: this.graph.uniqueName(`${this.prefix}/${hint}_node`) });
    const def = lookupOp(node.domain, opType);
    const inTypes = inputs.map((n) => (n ? this.type(n) : undefined));
    const values = inputs.map((n) => (n ? this.values.get(n) : undefined));
    const outTypes = def.infer({ node, opset: this.opset, inputs: inTypes, values });
    outputs.forEach((o, i) => this.types.set(o, outTypes[i]!));
    if (def.evaluate && values.every((v, i) => v !== undefined || !inputs[i])) {
      const folded = def.evaluate({ node, opset: this.opset, inputs: inTypes, values });
      folded?.forEach((v, i) => this.values.set(outputs[i]!, v));
    }
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
    if (!name) { name = this.constant(scalar(dtype, v), 'scalar'); this.scalarCache.set(key, name); }
    return name;
  }

  int64s(values: number[], hint = 'ints'): string { return this.constant(int64s(values), hint); }

  // ---- common compositions ----
  add(a: string, b: string): string { return this.op('Add', [a, b]); }
  sub(a: string, b: string): string { return this.op('Sub', [a, b]); }
  mul(a: string, b: string): string { return this.op('Mul', [a, b]); }
  div(a: string, b: string): string { return this.op('Div', [a, b]); }
  neg(a: string): string { return this.op('Neg', [a]); }
  /** x * scalar c, in x's element type. */
  scale(x: string, c: number): string { return c === 1 ? x : this.mul(x, this.scalar(c, this.type(x).dtype)); }

  reshape(x: string, dims: number[]): string {
    const cur = this.dims(x);
    if (cur.length === dims.length && cur.every((d, i) => d === dims[i])) return x;
    return this.op('Reshape', [x, this.int64s(dims, 'shape')]);
  }

  transpose(x: string, perm: number[]): string {
    if (perm.every((p, i) => p === i)) return x;
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

  /** Sum of several gradient contributions. */
  sum(parts: string[]): string {
    if (parts.length === 1) return parts[0]!;
    return this.op('Sum', parts, {}, 'accum');
  }

  constFloat(dtype: number, dims: number[], values: number[], hint = 'const'): string {
    return this.constant(fromNumbers(dtype, dims, values), hint);
  }
}

export { DataType };
