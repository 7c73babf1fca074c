/**
 * The in-memory graph IR: nodes, graph inputs/outputs, initializers (inline bytes or a reference into an
 * external data file, never loaded) and an editing API. Nodes keep their attributes as decoded protobuf so
 * that anything this package does not interpret survives a load/save round trip unchanged.
 */
import { OrtTrainingError } from './errors.js';
import type { AttributeProto, GraphProto, TensorProto } from './onnx/types.js';
import { AttributeType } from './onnx/types.js';
import { type HostTensor, numel, elementSize, viewBytes, tensorBytes, dataTypeName } from './tensor.js';

export type Dim = number | string | null;

export interface ValueInfo {
  name: string;
  /** Element type; 0 when unknown. */
  dtype: number;
  /** Undefined when the rank is unknown; a string for a symbolic dimension, null for an unknown one. */
  shape?: Dim[];
}

export interface ExternalRef {
  /** Absolute path of the data file. */
  path: string;
  offset: number;
  length: number;
}

export interface Initializer {
  name: string;
  dtype: number;
  dims: number[];
  /** Inline little-endian bytes, or where they lie in an external data file. */
  data: Uint8Array | ExternalRef;
}

export interface Node {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: AttributeProto[];
  /** Fields this package does not interpret (doc_string, metadata_props), kept for round trips. */
  extra?: Record<string, unknown>;
}

export const isExternal = (d: Initializer['data']): d is ExternalRef => !(d instanceof Uint8Array);

export function initializerFromHost(name: string, t: HostTensor): Initializer {
  return { name, dtype: t.dtype, dims: [...t.dims], data: tensorBytes(t) };
}

/** The values of an inline initializer; external ones are read only when `readExternal` is given. */
export function initializerToHost(init: Initializer, readExternal?: (ref: ExternalRef) => Uint8Array): HostTensor {
  const bytes = isExternal(init.data) ? readExternal?.(init.data) : init.data;
  if (!bytes) throw new OrtTrainingError('BAD_STATE', `initializer ${init.name} lives in external data and was not read`);
  const expected = numel(init.dims) * elementSize(init.dtype);
  if (bytes.byteLength !== expected) {
    throw new OrtTrainingError(
      'BAD_TENSOR',
      `initializer ${init.name}: ${bytes.byteLength} bytes for ${dataTypeName(init.dtype)}[${init.dims.join(',')}] (expected ${expected})`,
    );
  }
  return { dtype: init.dtype, dims: [...init.dims], data: viewBytes(init.dtype, bytes) };
}

export class Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, Initializer>;
  valueInfo: Map<string, ValueInfo>;
  /** Raw fields kept for round trips (doc_string, sparse initializers, quantization annotations). */
  extra: Partial<GraphProto>;
  private counter = 0;
  private usedNames: Set<string> | undefined;

  constructor(init: Partial<Pick<Graph, 'name' | 'nodes' | 'inputs' | 'outputs' | 'initializers' | 'valueInfo' | 'extra'>> = {}) {
    this.name = init.name ?? 'graph';
    this.nodes = init.nodes ?? [];
    this.inputs = init.inputs ?? [];
    this.outputs = init.outputs ?? [];
    this.initializers = init.initializers ?? new Map();
    this.valueInfo = init.valueInfo ?? new Map();
    this.extra = init.extra ?? {};
  }

  /** A tensor name not used anywhere in the graph, starting with `prefix`. */
  uniqueName(prefix: string): string {
    const used = (this.usedNames ??= this.collectNames());
    let name = prefix;
    while (used.has(name)) name = `${prefix}__${++this.counter}`;
    used.add(name);
    return name;
  }

  private collectNames(): Set<string> {
    const s = new Set<string>();
    for (const n of this.nodes) {
      for (const x of n.inputs) s.add(x);
      for (const x of n.outputs) s.add(x);
      s.add(n.name);
    }
    for (const v of this.inputs) s.add(v.name);
    for (const v of this.outputs) s.add(v.name);
    for (const k of this.initializers.keys()) s.add(k);
    return s;
  }

  private reserve(names: string[]): void {
    if (this.usedNames) for (const x of names) if (x) this.usedNames.add(x);
  }

  addNode(node: Omit<Node, 'domain' | 'attributes' | 'name'> & Partial<Pick<Node, 'domain' | 'attributes' | 'name'>>): Node {
    const full: Node = { domain: '', attributes: [], ...node, name: node.name ?? this.uniqueName(`${node.opType}_n`) };
    this.reserve([...full.inputs, ...full.outputs, full.name]);
    this.nodes.push(full);
    return full;
  }

  /** Replace `old` by `replacement` nodes, in place (keeps the order of the rest). */
  replaceNode(old: Node, replacement: Node[]): void {
    const i = this.nodes.indexOf(old);
    if (i < 0) throw new OrtTrainingError('BAD_STATE', `node ${old.name} is not in graph ${this.name}`);
    for (const n of replacement) this.reserve([...n.inputs, ...n.outputs, n.name]);
    this.nodes.splice(i, 1, ...replacement);
  }

  addInput(v: ValueInfo): void {
    if (this.inputs.some((x) => x.name === v.name)) throw new OrtTrainingError('BAD_STATE', `graph input ${v.name} exists`);
    this.reserve([v.name]);
    this.inputs.push(v);
  }

  addOutput(v: ValueInfo): void {
    if (this.outputs.some((x) => x.name === v.name)) return;
    this.reserve([v.name]);
    this.outputs.push(v);
  }

  addInitializer(init: Initializer): void {
    this.reserve([init.name]);
    this.initializers.set(init.name, init);
  }

  /** A fresh initializer holding `t`, named from `prefix`; returns its name. */
  addConstant(prefix: string, t: HostTensor): string {
    const name = this.uniqueName(prefix);
    this.addInitializer(initializerFromHost(name, t));
    return name;
  }

  /** Turn initializer `name` into a graph input of the same name (its value is returned, not lost). */
  promoteInitializerToInput(name: string): Initializer {
    const init = this.initializers.get(name);
    if (!init) throw new OrtTrainingError('UNKNOWN_TENSOR', `no initializer named ${name}`);
    this.initializers.delete(name);
    this.inputs = this.inputs.filter((v) => v.name !== name); // old IR: initializers may also be listed as inputs
    this.inputs.push({ name, dtype: init.dtype, shape: [...init.dims] });
    return init;
  }

  /** Map from tensor name to the node producing it. */
  producers(): Map<string, Node> {
    const m = new Map<string, Node>();
    for (const n of this.nodes) for (const o of n.outputs) if (o) m.set(o, n);
    return m;
  }

  /** Map from tensor name to the nodes consuming it (subgraph references are not followed). */
  consumers(): Map<string, Node[]> {
    const m = new Map<string, Node[]>();
    for (const n of this.nodes)
      for (const i of n.inputs)
        if (i) {
          const l = m.get(i);
          if (l) l.push(n);
          else m.set(i, [n]);
        }
    return m;
  }

  /** Names available before any node runs: graph inputs and initializers. */
  sources(): Set<string> {
    return new Set([...this.inputs.map((v) => v.name), ...this.initializers.keys()]);
  }

  /** Nodes in an order where every input is produced before use (stable for an already sorted graph). */
  topologicalOrder(): Node[] {
    const producer = this.producers();
    const state = new Map<Node, 1 | 2>();
    const order: Node[] = [];
    for (const root of this.nodes) {
      if (state.has(root)) continue;
      const stack: [Node, number][] = [[root, 0]];
      state.set(root, 1);
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        const [node, idx] = top;
        const deps = [...node.inputs, ...subgraphOuterInputs(node)];
        if (idx < deps.length) {
          top[1]++;
          const p = deps[idx] ? producer.get(deps[idx]!) : undefined;
          if (!p) continue;
          const s = state.get(p);
          if (s === 1) throw new OrtTrainingError('BAD_MODEL', `graph ${this.name} has a cycle through node ${p.name} (${p.opType})`);
          if (s === undefined) {
            state.set(p, 1);
            stack.push([p, 0]);
          }
        } else {
          stack.pop();
          state.set(node, 2);
          order.push(node);
        }
      }
    }
    return order;
  }

  sortTopologically(): void {
    this.nodes = this.topologicalOrder();
  }

  /** Remove nodes whose outputs reach no graph output, and initializers nothing reads. */
  removeDeadNodes(): void {
    const live = new Set(this.outputs.map((v) => v.name));
    const kept: Node[] = [];
    for (const n of [...this.topologicalOrder()].reverse()) {
      if (!n.outputs.some((o) => o && live.has(o))) continue;
      kept.push(n);
      for (const i of n.inputs) if (i) live.add(i);
      for (const i of subgraphOuterInputs(n)) live.add(i);
    }
    this.nodes = kept.reverse();
    for (const k of [...this.initializers.keys()]) if (!live.has(k)) this.initializers.delete(k);
    this.usedNames = undefined;
  }

  /**
   * The part of the graph that computes `outputs` from `inputs` (which become graph inputs; intermediate
   * tensors need their ValueInfo in `valueInfo` or on this graph to get a type). Shares initializers' data.
   */
  extractSubgraph(inputs: string[], outputs: string[]): Graph {
    const info = (name: string): ValueInfo => {
      const v = this.valueInfo.get(name) ?? this.inputs.find((x) => x.name === name) ?? this.outputs.find((x) => x.name === name);
      return v ? { ...v } : { name, dtype: 0 };
    };
    const stop = new Set(inputs);
    const producer = this.producers();
    const need = new Set<Node>();
    const usedInits = new Set<string>();
    const stack = [...outputs];
    const seen = new Set<string>();
    while (stack.length) {
      const t = stack.pop()!;
      if (seen.has(t) || stop.has(t)) continue;
      seen.add(t);
      const p = producer.get(t);
      if (p) {
        if (!need.has(p)) {
          need.add(p);
          stack.push(...p.inputs.filter(Boolean), ...subgraphOuterInputs(p));
        }
      } else if (this.initializers.has(t)) usedInits.add(t);
      else throw new OrtTrainingError('UNKNOWN_TENSOR', `extractSubgraph: ${t} is neither produced nor given as an input`);
    }
    return new Graph({
      name: `${this.name}_sub`,
      nodes: this.topologicalOrder().filter((n) => need.has(n)),
      inputs: inputs.map(info),
      outputs: outputs.map(info),
      initializers: new Map([...usedInits].map((k) => [k, this.initializers.get(k)!])),
      valueInfo: new Map([...this.valueInfo].filter(([k]) => seen.has(k))),
    });
  }
}

/** Names an If/Loop/Scan body reads from the enclosing graph (so liveness and ordering stay right). */
export function subgraphOuterInputs(node: Node): string[] {
  const out: string[] = [];
  for (const a of node.attributes) {
    const graphs = a.g ? [a.g] : (a.graphs ?? []);
    for (const g of graphs) {
      const local = new Set<string>([...(g.input ?? []).map((v) => v.name!), ...(g.initializer ?? []).map((t) => t.name!)]);
      for (const n of g.node ?? []) for (const o of n.output ?? []) local.add(o);
      for (const n of g.node ?? []) for (const i of n.input ?? []) if (i && !local.has(i)) out.push(i);
    }
  }
  return out;
}

// ---------- attributes ----------

export function findAttr(node: Node, name: string): AttributeProto | undefined {
  return node.attributes.find((a) => a.name === name);
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(String(v)));

export function attrInt(node: Node, name: string, fallback: number): number;
export function attrInt(node: Node, name: string): number | undefined;
export function attrInt(node: Node, name: string, fallback?: number): number | undefined {
  const a = findAttr(node, name);
  return a?.i !== undefined && a.i !== null ? num(a.i) : fallback;
}
export function attrFloat(node: Node, name: string, fallback: number): number {
  const a = findAttr(node, name);
  return a?.f !== undefined && a.f !== null ? a.f : fallback;
}
export function attrInts(node: Node, name: string): number[] | undefined {
  const a = findAttr(node, name);
  if (!a) return undefined;
  return (a.ints ?? []).map(num);
}
export function attrFloats(node: Node, name: string): number[] | undefined {
  const a = findAttr(node, name);
  return a ? [...(a.floats ?? [])] : undefined;
}
export function attrString(node: Node, name: string, fallback: string): string {
  const a = findAttr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : fallback;
}
export function attrTensor(node: Node, name: string): TensorProto | undefined {
  return findAttr(node, name)?.t ?? undefined;
}

export type AttrValue = number | number[] | string | { floats: number[] } | { float: number } | { tensor: TensorProto };

/** Build an AttributeProto: integers and integer lists by default, floats via {float}/{floats}. */
export function makeAttr(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'number') return { name, type: AttributeType.INT, i: v };
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  if ('float' in v) return { name, type: AttributeType.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: AttributeType.FLOATS, floats: v.floats };
  return { name, type: AttributeType.TENSOR, t: v.tensor };
}

export const attrs = (o: Record<string, AttrValue | undefined>): AttributeProto[] =>
  Object.entries(o)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => makeAttr(k, v!));
