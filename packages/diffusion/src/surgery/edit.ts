/**
 * Small graph-editing steps shared by the surgeries: copy a model without copying its weights, and append
 * nodes with fresh tensor names. The surgeries never mutate the model they are given, because callers keep
 * the original (the frozen model of METHOD.md) next to the edited one.
 */
import { DataType, Graph, attrs, defaultOpset, type AttrValue, type HostTensor, type Node, type OnnxModel } from '@dynasyn/ort-training';

/** A copy whose graph can be edited freely; initializer data (possibly external) is shared, not copied. */
export function copyModel(model: OnnxModel): OnnxModel {
  const src = model.graph;
  const graph = new Graph({
    name: src.name,
    nodes: src.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attributes: [...n.attributes] })),
    inputs: src.inputs.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : undefined })),
    outputs: src.outputs.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : undefined })),
    initializers: new Map(src.initializers),
    valueInfo: new Map(src.valueInfo),
    extra: { ...src.extra },
  });
  return { ...model, opsetImports: model.opsetImports.map((o) => ({ ...o })), metadata: { ...model.metadata }, graph };
}

/** Creates nodes named under one prefix (so an inspector can tell which surgery added what). */
export class NodeFactory {
  readonly opset: number;

  constructor(
    readonly graph: Graph,
    model: OnnxModel,
    private readonly prefix: string,
  ) {
    this.opset = defaultOpset(model);
  }

  /** A node not yet placed in the graph; returns it and its output name. */
  make(opType: string, inputs: string[], attributes: Record<string, AttrValue | undefined> = {}, output?: string): { node: Node; out: string } {
    const out = output ?? this.graph.uniqueName(`${this.prefix}/${opType}_output`);
    const node: Node = { name: this.graph.uniqueName(`${this.prefix}/${opType}`), opType, domain: '', inputs, outputs: [out], attributes: attrs(attributes) };
    return { node, out };
  }

  /** Append a node (callers sort the graph once at the end). */
  add(opType: string, inputs: string[], attributes: Record<string, AttrValue | undefined> = {}, output?: string): string {
    const { node, out } = this.make(opType, inputs, attributes, output);
    this.graph.addNode(node);
    return out;
  }

  constant(t: HostTensor, hint: string): string {
    return this.graph.addConstant(`${this.prefix}/${hint}`, t);
  }

  /** Unsqueeze with `axes` in the form the opset wants (an input from 13 on, an attribute before). */
  unsqueeze(x: string, axes: number[]): string {
    if (this.opset >= 13) return this.add('Unsqueeze', [x, this.constant(int64Tensor(axes), 'axes')]);
    return this.add('Unsqueeze', [x], { axes });
  }

  /** ReduceMean over `axes` (an input from opset 18 on, an attribute before). */
  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    if (this.opset >= 18) return this.add('ReduceMean', [x, this.constant(int64Tensor(axes), 'axes')], { keepdims: keepdims ? 1 : 0 });
    return this.add('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 });
  }
}

export function int64Tensor(values: number[]): HostTensor {
  return { dtype: DataType.INT64, dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) };
}
