/**
 * Elementwise ops: arithmetic with broadcasting, activations, comparisons, casts. Gradients of broadcasting
 * ops are summed back onto each input's shape; piecewise ops route the gradient with Where masks.
 */
import { attrFloat, attrInt, attrString } from '../graph.js';
import type { Builder } from '../builder.js';
import { DataType, fromNumbers, isFloat, numel, toNumbers, type HostTensor } from '../tensor.js';
import { broadcastDims, fail, input, strides } from './common.js';
import type { GradContext, InferContext, OpDef, OpTable, TensorType } from './types.js';

/** Broadcast-evaluate `f` over the inputs' values (constant folding of small tensors). */
export function broadcastEval(ctx: InferContext, dtype: number, f: (...xs: number[]) => number): HostTensor[] {
  const dims = broadcastDims(
    ctx.node,
    ctx.inputs.map((t) => t!.dims),
  );
  const n = numel(dims);
  const vals = ctx.values.map((v) => toNumbers(v!));
  const ins = ctx.inputs.map((t) => {
    const d = t!.dims,
      s = strides(d),
      off = dims.length - d.length;
    return (flat: number[]) => {
      let idx = 0;
      for (let i = 0; i < d.length; i++) idx += (d[i] === 1 ? 0 : flat[i + off]!) * s[i]!;
      return idx;
    };
  });
  const out = new Array<number>(n);
  const outStrides = strides(dims);
  const flat = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < n; k++) {
    let r = k;
    for (let i = 0; i < dims.length; i++) {
      flat[i] = Math.floor(r / outStrides[i]!);
      r %= outStrides[i]!;
    }
    out[k] = f(...vals.map((v, j) => v[ins[j]!(flat)]!));
  }
  return [fromNumbers(dtype, dims, out)];
}

const broadcastInfer =
  (dtype?: number) =>
  (ctx: InferContext): TensorType[] => [
    {
      dtype: dtype ?? input(ctx, 0).dtype,
      dims: broadcastDims(
        ctx.node,
        ctx.inputs.map((t, i) => (t ?? input(ctx, i)).dims),
      ),
    },
  ];

const sameType = (ctx: InferContext): TensorType[] => [{ ...input(ctx, 0) }];
const mapValues = (ctx: InferContext, dtype: number, f: (x: number) => number): HostTensor[] => [
  fromNumbers(dtype, ctx.inputs[0]!.dims, toNumbers(ctx.values[0]!).map(f)),
];

const intDiv = (a: number, b: number) => Math.trunc(a / b);
/** ONNX Round: halves go to the even neighbour. */
const roundHalfEven = (x: number) => (Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x));

function binary(f: (a: number, b: number, isF: boolean) => number, gradient?: OpDef['gradient']): OpDef {
  return {
    infer: broadcastInfer(),
    evaluate: (ctx) => {
      const isF = isFloat(ctx.inputs[0]!.dtype);
      return broadcastEval(ctx, ctx.inputs[0]!.dtype, (a, b) => f(a!, b!, isF));
    },
    ...(gradient ? { gradient } : {}),
  };
}

function comparison(f: (a: number, b: number) => boolean): OpDef {
  return {
    infer: broadcastInfer(DataType.BOOL),
    evaluate: (ctx) => broadcastEval(ctx, DataType.BOOL, (a, b) => (f(a!, b!) ? 1 : 0)),
    nonDifferentiable: true,
  };
}

/** A unary op whose output has its input's type; `f` folds it (omitted where JS has no exact equivalent). */
export function unaryFloat(f: ((x: number) => number) | undefined, gradient?: OpDef['gradient']): OpDef {
  return {
    infer: sameType,
    ...(f ? { evaluate: (ctx: InferContext) => mapValues(ctx, ctx.inputs[0]!.dtype, f) } : {}),
    ...(gradient ? { gradient } : {}),
  };
}

/** What a unary gradient rule reads: upstream gradient d, input x, output y, and scalars `c(v)` of x's type. */
interface Unary {
  b: Builder;
  d: string;
  x: string;
  y: string;
  c: (v: number) => string;
  ctx: GradContext;
}

/** A unary op with gradient dx built by `dx` (which reads like the derivative's formula). */
function unary(f: ((x: number) => number) | undefined, dx: (u: Unary) => string): OpDef {
  return unaryFloat(f, (ctx) => {
    const b = ctx.b,
      x = ctx.inputs[0]!.name,
      dtype = ctx.inputs[0]!.type.dtype;
    return [dx({ b, d: ctx.dOutputs[0]!, x, y: ctx.outputs[0]!.name, c: (v) => b.scalar(v, dtype), ctx })];
  });
}

/** A piecewise-constant unary op (Floor, Sign, ...): folded, zero gradient. */
const stepwise = (f: (x: number) => number): OpDef => ({
  infer: sameType,
  evaluate: (ctx) => mapValues(ctx, ctx.inputs[0]!.dtype, f),
  nonDifferentiable: true,
});

/** d(a op b): reduce the broadcast gradient back onto each input's shape. */
const reduceTo = (ctx: GradContext, i: number, g: string) => ctx.b.sumToShape(g, ctx.inputs[i]!.type.dims);

const where = (b: Builder, cond: string, yes: string, no: string) => b.op('Where', [cond, yes, no]);
const greater = (b: Builder, x: string, y: string) => b.op('Greater', [x, y]);
const less = (b: Builder, x: string, y: string) => b.op('Less', [x, y]);

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const SELU_ALPHA = 1.67326319217681884765625,
  SELU_GAMMA = 1.05070102214813232421875;

/**
 * Max/Min: the gradient goes to the inputs equal to the output, shared equally between tied inputs (as
 * PyTorch's maximum/minimum do; a central difference at a two-way tie sees the same 1/2).
 */
function selectGradient(ctx: GradContext): (string | undefined)[] {
  const b = ctx.b,
    d = ctx.dOutputs[0]!,
    y = ctx.outputs[0]!.name,
    dtype = ctx.outputs[0]!.type.dtype;
  if (ctx.inputs.length === 1) return [d];
  const masks = ctx.inputs.map((t) => b.cast(b.op('Equal', [t!.name, y]), dtype));
  const share = b.div(d, b.sum(masks)); // d / (number of inputs attaining the extreme)
  return ctx.inputs.map((_, i) => (ctx.needs[i] ? reduceTo(ctx, i, b.mul(share, masks[i]!)) : undefined));
}

function variadic(f: (a: number, b: number) => number): OpDef {
  return {
    infer: broadcastInfer(),
    evaluate: (ctx) => broadcastEval(ctx, ctx.inputs[0]!.dtype, (...xs) => xs.reduce((a, b) => f(a, b))), // not reduce(f): Math.max would see the index too
    gradient: selectGradient,
  };
}

/** Dropout runs in training mode only when its training_mode input is a constant true. */
function dropoutTraining(ctx: { node: InferContext['node']; values: (HostTensor | undefined)[] }): boolean {
  if (!ctx.node.inputs[2]) return false;
  const v = ctx.values[2];
  if (!v) fail(ctx.node, 'training_mode must be a constant');
  return toNumbers(v)[0] !== 0;
}

/**
 * SiLU as exported, y = x * Sigmoid(x) with the Sigmoid read by nothing else: dx = d (s + y (1 - s)) in
 * four nodes, and no gradient for s, so the Sigmoid node needs no rule of its own (six nodes otherwise).
 */
function siluGradient(ctx: GradContext): (string | undefined)[] | undefined {
  const { b, node } = ctx,
    d = ctx.dOutputs[0]!,
    [a, c] = ctx.inputs;
  if (!a || !c || a.name === c.name) return undefined;
  for (const [xi, si] of [
    [0, 1],
    [1, 0],
  ] as const) {
    const x = ctx.inputs[xi]!,
      s = ctx.inputs[si]!;
    const p = b.producer(s.name);
    if (!p || p.opType !== 'Sigmoid' || p.inputs[0] !== x.name || !b.onlyReadBy(s.name, node)) continue;
    if (x.type.dims.length !== s.type.dims.length || x.type.dims.some((dim, i) => dim !== s.type.dims[i])) continue;
    const y = ctx.outputs[0]!.name,
      one = b.scalar(1, x.type.dtype);
    const slope = b.add(s.name, b.mul(y, b.sub(one, s.name)));
    const grads: (string | undefined)[] = [undefined, undefined];
    grads[xi] = ctx.needs[xi] ? b.mul(d, slope) : undefined;
    return grads;
  }
  return undefined;
}

export const elementwiseOps: OpTable = {
  Add: binary(
    (a, b) => a + b,
    (ctx) => {
      const d = ctx.dOutputs[0]!;
      return [ctx.needs[0] ? reduceTo(ctx, 0, d) : undefined, ctx.needs[1] ? reduceTo(ctx, 1, d) : undefined];
    },
  ),
  Sub: binary(
    (a, b) => a - b,
    (ctx) => {
      const d = ctx.dOutputs[0]!;
      return [ctx.needs[0] ? reduceTo(ctx, 0, d) : undefined, ctx.needs[1] ? reduceTo(ctx, 1, ctx.b.neg(d)) : undefined];
    },
  ),
  Mul: binary(
    (a, b) => a * b,
    (ctx) => {
      const d = ctx.dOutputs[0]!,
        [a, b] = ctx.inputs;
      const silu = siluGradient(ctx);
      if (silu) return silu;
      return [ctx.needs[0] ? reduceTo(ctx, 0, ctx.b.mul(d, b!.name)) : undefined, ctx.needs[1] ? reduceTo(ctx, 1, ctx.b.mul(d, a!.name)) : undefined];
    },
  ),
  Div: binary(
    (a, b, isF) => (isF ? a / b : intDiv(a, b)),
    (ctx) => {
      const d = ctx.dOutputs[0]!,
        [, b] = ctx.inputs,
        y = ctx.outputs[0]!.name;
      const da = ctx.needs[0] || ctx.needs[1] ? ctx.b.div(d, b!.name) : undefined; // dL/da = d / b
      return [
        ctx.needs[0] ? reduceTo(ctx, 0, da!) : undefined,
        ctx.needs[1] ? reduceTo(ctx, 1, ctx.b.neg(ctx.b.mul(da!, y))) : undefined, // dL/db = -d * a / b^2 = -(d/b) * y
      ];
    },
  ),
  /**
   * y = a^p: da = d p a^(p-1) (as a power, not y/a, so a = 0 works); dp = d y ln(a), defined for a > 0 only
   * (NaN elsewhere, as in PyTorch). A constant scalar exponent gives a short rule (x^2 -> 2x).
   */
  Pow: binary(
    (a, p) => Math.pow(a, p),
    (ctx) => {
      const { b } = ctx,
        d = ctx.dOutputs[0]!,
        [a, p] = ctx.inputs,
        dtype = a!.type.dtype;
      let da: string | undefined;
      if (ctx.needs[0]) {
        const k = p!.value && numel(p!.type.dims) === 1 ? toNumbers(p!.value)[0]! : undefined;
        let slope: string | undefined; // dy/da
        if (k === undefined) {
          const pf = b.cast(p!.name, dtype);
          slope = b.mul(pf, b.op('Pow', [a!.name, b.sub(pf, b.scalar(1, dtype))]));
        } else if (k === 2) slope = b.scale(a!.name, 2);
        else if (k !== 1) slope = b.scale(b.op('Pow', [a!.name, b.scalar(k - 1, dtype)]), k);
        da = reduceTo(ctx, 0, slope ? b.mul(d, slope) : d);
      }
      const dp = ctx.needs[1] ? reduceTo(ctx, 1, b.mul(b.mul(d, ctx.outputs[0]!.name), b.op('Log', [a!.name]))) : undefined;
      return [da, dp];
    },
  ),
  /** Float Mod (fmod=1) is a - trunc(a/b) b: da = d, db = -d trunc(a/b) = -d (a - y) / b. Integer Mod never carries a gradient. */
  Mod: {
    infer: broadcastInfer(),
    // fmod=1: sign of the dividend (JS %); fmod=0: sign of the divisor (Python %)
    evaluate: (ctx) => broadcastEval(ctx, ctx.inputs[0]!.dtype, attrInt(ctx.node, 'fmod', 0) ? (a, b) => a! % b! : (a, b) => ((a! % b!) + b!) % b!),
    gradient: (ctx) => {
      const { b } = ctx,
        d = ctx.dOutputs[0]!,
        [x, m] = ctx.inputs;
      const quotient = () => b.div(b.sub(x!.name, ctx.outputs[0]!.name), m!.name);
      return [ctx.needs[0] ? reduceTo(ctx, 0, d) : undefined, ctx.needs[1] ? reduceTo(ctx, 1, b.neg(b.mul(d, quotient()))) : undefined];
    },
  },
  Neg: unaryFloat(
    (x) => -x,
    (ctx) => [ctx.b.neg(ctx.dOutputs[0]!)],
  ),
  Identity: { infer: sameType, evaluate: (ctx) => [ctx.values[0]!], gradient: (ctx) => [ctx.dOutputs[0]] },
  Sum: {
    infer: broadcastInfer(),
    evaluate: (ctx) => broadcastEval(ctx, ctx.inputs[0]!.dtype, (...xs) => xs.reduce((a, b) => a + b, 0)),
    gradient: (ctx) => ctx.inputs.map((_, i) => (ctx.needs[i] ? reduceTo(ctx, i, ctx.dOutputs[0]!) : undefined)),
  },
  Max: variadic(Math.max),
  Min: variadic(Math.min),

  // ---- unary math: dx = d * f'(x), written with the output y where that is cheaper ----
  Sqrt: unary(Math.sqrt, ({ b, d, y }) => b.div(b.scale(d, 0.5), y)), // d / (2 sqrt x)
  Exp: unary(Math.exp, ({ b, d, y }) => b.mul(d, y)),
  Log: unary(Math.log, ({ b, d, x }) => b.div(d, x)),
  Reciprocal: unary(
    (x) => 1 / x,
    ({ b, d, y }) => b.neg(b.mul(d, b.mul(y, y))),
  ), // -d / x^2
  Abs: unary(Math.abs, ({ b, d, x }) => b.mul(d, b.op('Sign', [x]))), // 0 at x = 0, as PyTorch
  Sin: unary(Math.sin, ({ b, d, x }) => b.mul(d, b.op('Cos', [x]))),
  Cos: unary(Math.cos, ({ b, d, x }) => b.neg(b.mul(d, b.op('Sin', [x])))),
  Erf: unary(undefined, ({ b, d, x }) => b.mul(d, b.scale(b.op('Exp', [b.neg(b.mul(x, x))]), 2 / Math.sqrt(Math.PI)))), // d 2/sqrt(pi) e^(-x^2)

  // ---- activations ----
  Sigmoid: unary(
    (x) => 1 / (1 + Math.exp(-x)),
    ({ b, d, y, c }) => b.mul(d, b.mul(y, b.sub(c(1), y))),
  ), // d y (1 - y)
  Tanh: unary(Math.tanh, ({ b, d, y, c }) => b.mul(d, b.sub(c(1), b.mul(y, y)))), // d (1 - y^2)
  Relu: unary(
    (x) => Math.max(x, 0),
    ({ b, d, x, c }) => where(b, greater(b, x, c(0)), d, c(0)),
  ),
  LeakyRelu: unary(undefined, ({ b, d, x, c, ctx }) => where(b, greater(b, x, c(0)), d, b.scale(d, attrFloat(ctx.node, 'alpha', 0.01)))),
  /** x <= 0: y = alpha (e^x - 1), so dy/dx = y + alpha. */
  Elu: unary(undefined, ({ b, d, x, y, c, ctx }) => where(b, greater(b, x, c(0)), d, b.mul(d, b.add(y, c(attrFloat(ctx.node, 'alpha', 1)))))),
  /** x <= 0: y = gamma alpha (e^x - 1), so dy/dx = y + gamma alpha; x > 0: gamma. */
  Selu: unary(undefined, ({ b, d, x, y, c, ctx }) => {
    const alpha = attrFloat(ctx.node, 'alpha', SELU_ALPHA),
      gamma = attrFloat(ctx.node, 'gamma', SELU_GAMMA);
    return b.mul(d, where(b, greater(b, x, c(0)), c(gamma), b.add(y, c(alpha * gamma))));
  }),
  /** y = ln(1 + e^x): dy/dx = sigmoid(x). */
  Softplus: unary(
    (x) => (x > 30 ? x : Math.log1p(Math.exp(x))),
    ({ b, d, x }) => b.mul(d, b.op('Sigmoid', [x])),
  ),
  /** y = clamp(alpha x + beta, 0, 1): slope alpha strictly inside. */
  HardSigmoid: unary(undefined, ({ b, d, y, c, ctx }) => {
    const inside = b.op('And', [greater(b, y, c(0)), less(b, y, c(1))]);
    return where(b, inside, b.scale(d, attrFloat(ctx.node, 'alpha', 0.2)), c(0));
  }),
  /** y = x clamp(x/6 + 1/2, 0, 1): dy/dx = 0 below -3, x/3 + 1/2 between, 1 above 3 (as PyTorch). */
  HardSwish: unary(undefined, ({ b, d, x, c }) => {
    const mid = b.add(b.scale(x, 1 / 3), c(0.5));
    return b.mul(d, where(b, less(b, x, c(-3)), c(0), where(b, greater(b, x, c(3)), c(1), mid)));
  }),
  /** y = x tanh(softplus(x)): dy/dx = t + x (1 - t^2) sigmoid(x) with t = tanh(softplus(x)). */
  Mish: unary(undefined, ({ b, d, x, c }) => {
    const t = b.op('Tanh', [b.op('Softplus', [x])]);
    const rest = b.mul(b.mul(x, b.sub(c(1), b.mul(t, t))), b.op('Sigmoid', [x]));
    return b.mul(d, b.add(t, rest));
  }),
  /**
   * Exact: y = x Phi(x), dy/dx = Phi(x) + x phi(x) (standard normal cdf and pdf).
   * tanh: y = x (1 + t) / 2, t = tanh(u), u = k (x + a x^3): dy/dx = (1 + t) / 2 + x (1 - t^2) k (1 + 3a x^2) / 2.
   */
  Gelu: unary(undefined, ({ b, d, x, c, ctx }) => {
    const x2 = b.mul(x, x);
    if (attrString(ctx.node, 'approximate', 'none') === 'tanh') {
      const k = SQRT_2_OVER_PI,
        a = 0.044715;
      const t = b.op('Tanh', [b.mul(x, b.add(b.scale(x2, k * a), c(k)))]);
      const half1pt = b.add(b.scale(t, 0.5), c(0.5));
      const du = b.add(b.scale(x2, 1.5 * k * a), c(0.5 * k)); // k (1 + 3a x^2) / 2
      return b.mul(d, b.add(half1pt, b.mul(b.mul(x, b.sub(c(1), b.mul(t, t))), du)));
    }
    const cdf = b.add(b.scale(b.op('Erf', [b.scale(x, Math.SQRT1_2)]), 0.5), c(0.5));
    const xPdf = b.mul(x, b.scale(b.op('Exp', [b.scale(x2, -0.5)]), 1 / Math.sqrt(2 * Math.PI)));
    return b.mul(d, b.add(cdf, xPdf));
  }),
  /** y = x for x > 0, slope x otherwise (slope broadcasts onto x). */
  PRelu: binary(
    (x, s) => (x > 0 ? x : s * x),
    (ctx) => {
      const { b } = ctx,
        d = ctx.dOutputs[0]!,
        [x, s] = ctx.inputs;
      const pos = greater(b, x!.name, b.scalar(0, x!.type.dtype)),
        zero = b.scalar(0, x!.type.dtype);
      return [
        ctx.needs[0] ? where(b, pos, d, b.mul(d, s!.name)) : undefined,
        ctx.needs[1] ? reduceTo(ctx, 1, where(b, pos, zero, b.mul(d, x!.name))) : undefined,
      ];
    },
  ),
  /**
   * Clip(x, min?, max?): d passes where min <= x <= max (as PyTorch's clamp); below min it goes to min,
   * above max to max (summed, they are scalars).
   */
  Clip: {
    infer: sameType,
    evaluate: (ctx) => {
      const lo = ctx.node.inputs[1] ? toNumbers(ctx.values[1]!)[0]! : -Infinity,
        hi = ctx.node.inputs[2] ? toNumbers(ctx.values[2]!)[0]! : Infinity;
      return mapValues(ctx, ctx.inputs[0]!.dtype, (x) => Math.min(Math.max(x, lo), hi));
    },
    gradient: (ctx) => {
      const { b } = ctx,
        d = ctx.dOutputs[0]!,
        [x, lo, hi] = ctx.inputs,
        zero = b.scalar(0, x!.type.dtype);
      const inLo = lo ? b.op('GreaterOrEqual', [x!.name, lo.name]) : undefined;
      const inHi = hi ? b.op('LessOrEqual', [x!.name, hi.name]) : undefined;
      const inside = inLo && inHi ? b.op('And', [inLo, inHi]) : (inLo ?? inHi);
      return [
        ctx.needs[0] ? (inside ? where(b, inside, d, zero) : d) : undefined,
        ctx.needs[1] ? reduceTo(ctx, 1, where(b, inLo!, zero, d)) : undefined,
        ctx.needs[2] ? reduceTo(ctx, 2, where(b, inHi!, zero, d)) : undefined,
      ];
    },
  },
  /** Where(cond, x, y): d goes to x where cond holds, to y elsewhere; cond has no gradient. */
  Where: {
    infer: (ctx) => [{ dtype: input(ctx, 1).dtype, dims: broadcastInfer()(ctx)[0]!.dims }],
    evaluate: (ctx) => broadcastEval(ctx, ctx.inputs[1]!.dtype, (c, x, y) => (c ? x! : y!)),
    gradient: (ctx) => {
      const { b } = ctx,
        d = ctx.dOutputs[0]!,
        cond = ctx.inputs[0]!.name,
        zero = b.scalar(0, ctx.outputs[0]!.type.dtype);
      return [
        undefined,
        ctx.needs[1] ? reduceTo(ctx, 1, where(b, cond, d, zero)) : undefined,
        ctx.needs[2] ? reduceTo(ctx, 2, where(b, cond, zero, d)) : undefined,
      ];
    },
  },
  /** Inference mode: identity with an all-true mask. Training mode: y = x mask / (1 - ratio), so dx = d mask / (1 - ratio). */
  Dropout: {
    infer: (ctx) => [{ ...input(ctx, 0) }, { dtype: DataType.BOOL, dims: [...input(ctx, 0).dims] }],
    evaluate: (ctx) =>
      dropoutTraining(ctx)
        ? undefined
        : [ctx.values[0]!, fromNumbers(DataType.BOOL, ctx.inputs[0]!.dims, new Array<number>(numel(ctx.inputs[0]!.dims)).fill(1))],
    gradient: (ctx) => {
      const { b, node } = ctx,
        d = ctx.dOutputs[0]!;
      if (!dropoutTraining({ node, values: ctx.inputs.map((t) => t?.value) })) return [d];
      const mask = node.outputs[1];
      if (!mask) fail(node, 'training-mode Dropout needs its mask output to be differentiated (or export the model in eval mode)');
      const dtype = ctx.inputs[0]!.type.dtype,
        ratio = ctx.inputs[1];
      const keep = ratio ? b.sub(b.scalar(1, dtype), ratio.name) : b.scalar(0.5, dtype); // default ratio 0.5
      return [b.div(b.mul(d, b.cast(mask, dtype)), keep)];
    },
  },
  Cast: {
    infer: (ctx) => [{ dtype: attrInt(ctx.node, 'to', 1), dims: [...input(ctx, 0).dims] }],
    evaluate: (ctx) => [fromNumbers(attrInt(ctx.node, 'to', 1), ctx.inputs[0]!.dims, toNumbers(ctx.values[0]!))],
    gradient: (ctx) => {
      const from = ctx.inputs[0]!.type.dtype;
      if (!isFloat(ctx.outputs[0]!.type.dtype)) return [undefined];
      return [ctx.b.cast(ctx.dOutputs[0]!, from)];
    },
  },
  /** Cast to the element type of the second input, whose values play no part (no gradient to it). */
  CastLike: {
    infer: (ctx) => [{ dtype: input(ctx, 1).dtype, dims: [...input(ctx, 0).dims] }],
    evaluate: (ctx) => [fromNumbers(ctx.inputs[1]!.dtype, ctx.inputs[0]!.dims, toNumbers(ctx.values[0]!))],
    gradient: (ctx) => [isFloat(ctx.outputs[0]!.type.dtype) ? ctx.b.cast(ctx.dOutputs[0]!, ctx.inputs[0]!.type.dtype) : undefined, undefined],
  },

  // ---- piecewise constant or non-float results: no gradient by nature ----
  Floor: stepwise(Math.floor),
  Ceil: stepwise(Math.ceil),
  Round: stepwise(roundHalfEven),
  Sign: stepwise(Math.sign),
  IsNaN: {
    infer: (ctx) => [{ dtype: DataType.BOOL, dims: [...input(ctx, 0).dims] }],
    evaluate: (ctx) => mapValues(ctx, DataType.BOOL, (x) => (Number.isNaN(x) ? 1 : 0)),
    nonDifferentiable: true,
  },
  IsInf: {
    infer: (ctx) => [{ dtype: DataType.BOOL, dims: [...input(ctx, 0).dims] }],
    evaluate: (ctx) => {
      const pos = attrInt(ctx.node, 'detect_positive', 1) !== 0,
        neg = attrInt(ctx.node, 'detect_negative', 1) !== 0;
      return mapValues(ctx, DataType.BOOL, (x) => ((pos && x === Infinity) || (neg && x === -Infinity) ? 1 : 0));
    },
    nonDifferentiable: true,
  },
  Equal: comparison((a, b) => a === b),
  Less: comparison((a, b) => a < b),
  LessOrEqual: comparison((a, b) => a <= b),
  Greater: comparison((a, b) => a > b),
  GreaterOrEqual: comparison((a, b) => a >= b),
  Not: { infer: (ctx) => [{ ...input(ctx, 0) }], evaluate: (ctx) => mapValues(ctx, DataType.BOOL, (x) => (x ? 0 : 1)), nonDifferentiable: true },
  And: comparison((a, b) => !!a && !!b),
  Or: comparison((a, b) => !!a || !!b),
  Xor: comparison((a, b) => !!a !== !!b),
};
