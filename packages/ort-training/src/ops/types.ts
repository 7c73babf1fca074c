/**
 * What the engine knows about an operator, defined once per op: how its output types follow from its
 * input types (static shape inference), how to evaluate it on small constant inputs (folding shape
 * arithmetic), and its reverse-mode gradient rule expressed as new ONNX nodes.
 */
import type { Node } from '../graph.js';
import type { HostTensor } from '../tensor.js';
import type { Builder } from '../builder.js';

/** A statically known tensor type: element type and concrete dimensions. */
export interface TensorType {
  dtype: number;
  dims: number[];
}

export interface InferContext {
  node: Node;
  /** Opset version of the node's domain. */
  opset: number;
  /** Input types, undefined for an omitted optional input (empty name). */
  inputs: (TensorType | undefined)[];
  /** Input values where they are known constants (initializers, Constant nodes, folded shape arithmetic). */
  values: (HostTensor | undefined)[];
}

export interface TensorRef {
  name: string;
  type: TensorType;
  /** The value when it is a known constant. */
  value?: HostTensor;
}

export interface GradContext {
  node: Node;
  opset: number;
  /** Forward inputs (undefined for omitted optional inputs) and outputs. */
  inputs: (TensorRef | undefined)[];
  outputs: TensorRef[];
  /** Gradient tensor of each output, undefined where no gradient flows into it (a zero). */
  dOutputs: (string | undefined)[];
  /** Which inputs need a gradient (only those on a path from a requested tensor). */
  needs: boolean[];
  b: Builder;
  /** The nodes of the forward graph that read `tensor`, in graph order. */
  consumers: (tensor: string) => readonly Node[];
  /**
   * The final gradient of a tensor produced later in the forward graph (its consumers have all been
   * differentiated already), undefined when none flows into it.
   */
  gradientOf: (tensor: string) => string | undefined;
  /** True when `tensor` is an output of the derived graph (the loss, or an output kept alongside it). */
  isOutput: (tensor: string) => boolean;
}

/** Returns, for each input, the name of its gradient tensor (or undefined when not needed). */
export type GradientRule = (ctx: GradContext) => (string | undefined)[];

export interface OpDef {
  infer(ctx: InferContext): TensorType[];
  /** Host evaluation for constant inputs; may return undefined when it declines (e.g. too large). */
  evaluate?(ctx: InferContext): HostTensor[] | undefined;
  /** Reverse-mode rule; absent means the op has no gradient (an error when a gradient must pass). */
  gradient?: GradientRule;
  /**
   * The outputs carry no gradient by nature (integer or boolean results, or piecewise constant ones such
   * as Floor), so a path through them contributes exactly zero rather than failing.
   */
  nonDifferentiable?: boolean;
}

export type OpTable = Record<string, OpDef>;
