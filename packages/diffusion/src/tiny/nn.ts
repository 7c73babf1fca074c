/**
 * Layers of diffusers' UNet2DConditionModel / AutoencoderKL and transformers' CLIPTextModel, emitted as
 * the ONNX that torch.onnx (opset 17) produces for them: GroupNorm as Reshape -> InstanceNormalization ->
 * Reshape -> Mul -> Add, GELU through Erf, Linear as MatMul with a transposed `onnx::MatMul_N` weight plus
 * Add (Gemm on 2-D inputs), attention with heads folded into the batch by Reshape/Transpose, SiLU as
 * Sigmoid * x. Each layer runs in the caller's module scope; sub-modules open their own (`to_q`, `norm1`).
 *
 * Weights are N(0, 1/fan_in) (variance preserving), biases N(0, 0.02^2), norms weight 1 bias 0.
 */
import { DataType, fromNumbers } from '@dynasyn/ort-training';
import type { ModuleBuilder, Value } from './module-builder.js';

const BIAS_STD = 0.02;
const last = (x: Value): number => x.shape[x.shape.length - 1]!;
const withLast = (x: Value, d: number): number[] => [...x.shape.slice(0, -1), d];

/** nn.Conv2d in sub-module `name`. */
export function conv2d(m: ModuleBuilder, x: Value, name: string, cout: number, kernel: number, opts: { stride?: number; pad?: number } = {}): Value {
  const stride = opts.stride ?? 1;
  const pad = opts.pad ?? (kernel - 1) / 2;
  const [b, cin, h, w] = x.shape as [number, number, number, number];
  return m.scoped(name, () => {
    const weight = m.param('weight', [cout, cin, kernel, kernel], { std: 1 / Math.sqrt(cin * kernel * kernel) });
    const bias = m.param('bias', [cout], { std: BIAS_STD });
    const out = m.op('Conv', [x.name, weight, bias], {
      dilations: [1, 1],
      group: 1,
      kernel_shape: [kernel, kernel],
      pads: [pad, pad, pad, pad],
      strides: [stride, stride],
    });
    const size = (n: number) => Math.floor((n + 2 * pad - kernel) / stride) + 1;
    return { name: out, shape: [b, cout, size(h), size(w)] };
  });
}

/** nn.Linear on a [.., in] tensor of rank >= 3: MatMul with the transposed weight as `onnx::MatMul_N`, then Add(bias). */
export function linear(m: ModuleBuilder, x: Value, name: string, out: number, opts: { bias?: boolean } = {}): Value {
  const cin = last(x);
  return m.scoped(name, () => {
    const w = m.values(m.paramPath('weight'), [out, cin], { std: 1 / Math.sqrt(cin) }); // W [out, in]
    const wt = new Float32Array(cin * out); // torch stores W^T so that y = x @ W^T is one MatMul
    for (let i = 0; i < cin; i++) for (let o = 0; o < out; o++) wt[i * out + o] = w[o * cin + i]!;
    const weight = m.anonymousParam('MatMul', { dtype: DataType.FLOAT, dims: [cin, out], data: wt });
    let y = m.op('MatMul', [x.name, weight]);
    if (opts.bias ?? true) y = m.op('Add', [m.param('bias', [out], { std: BIAS_STD }), y]);
    return { name: y, shape: withLast(x, out) };
  });
}

/** nn.Linear on a [B, in] tensor: torch exports it as Gemm(transB=1) with the named weight. */
export function gemm(m: ModuleBuilder, x: Value, name: string, out: number): Value {
  const cin = last(x);
  return m.scoped(name, () => {
    const weight = m.param('weight', [out, cin], { std: 1 / Math.sqrt(cin) });
    const bias = m.param('bias', [out], { std: BIAS_STD });
    const y = m.op('Gemm', [x.name, weight, bias], { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 });
    return { name: y, shape: withLast(x, out) };
  });
}

/** nn.GroupNorm: Reshape [0, G, -1] -> InstanceNormalization -> Reshape(Shape(x)) -> Mul(gamma[C,1,1]) -> Add(beta). */
export function groupNorm(m: ModuleBuilder, x: Value, name: string, groups: number, eps: number): Value {
  const c = x.shape[1]!;
  return m.scoped(name, () => {
    const grouped = m.op('Reshape', [x.name, m.constInt64([0, groups, -1])], { allowzero: 0 });
    const normed = m.op(
      'InstanceNormalization',
      [grouped, m.constFloats([groups], new Float32Array(groups).fill(1)), m.constFloats([groups], new Float32Array(groups))],
      { epsilon: { float: eps } },
    );
    const back = m.op('Reshape', [normed, m.op('Shape', [x.name])], { allowzero: 0 });
    const gamma = m.anonymousParam('Mul', { dtype: DataType.FLOAT, dims: [c, 1, 1], data: m.values(m.paramPath('weight'), [c], { fill: 1 }) });
    const beta = m.anonymousParam('Add', { dtype: DataType.FLOAT, dims: [c, 1, 1], data: m.values(m.paramPath('bias'), [c], { fill: 0 }) });
    return { name: m.op('Add', [m.op('Mul', [back, gamma]), beta]), shape: x.shape };
  });
}

/** nn.LayerNorm over the last axis (LayerNormalization, opset 17). */
export function layerNorm(m: ModuleBuilder, x: Value, name: string, eps = 1e-5): Value {
  const d = last(x);
  return m.scoped(name, () => {
    const y = m.op('LayerNormalization', [x.name, m.param('weight', [d], { fill: 1 }), m.param('bias', [d], { fill: 0 })], {
      axis: -1,
      epsilon: { float: eps },
    });
    return { name: y, shape: x.shape };
  });
}

/** F.silu: x * Sigmoid(x). */
export function silu(m: ModuleBuilder, x: Value): Value {
  return { name: m.op('Mul', [x.name, m.op('Sigmoid', [x.name])]), shape: x.shape };
}

/** Exact GELU: x * (1 + erf(x / sqrt 2)) * 0.5, torch's opset-17 decomposition. */
export function gelu(m: ModuleBuilder, x: Value): Value {
  const erf = m.op('Erf', [m.op('Div', [x.name, m.constFloat(Math.SQRT2)])]);
  const y = m.op('Mul', [m.op('Mul', [x.name, m.op('Add', [erf, m.constFloat(1)])]), m.constFloat(0.5)]);
  return { name: y, shape: x.shape };
}

/** CLIP's quick_gelu: x * sigmoid(1.702 x). */
export function quickGelu(m: ModuleBuilder, x: Value): Value {
  const s = m.op('Sigmoid', [m.op('Mul', [x.name, m.constFloat(1.702)])]);
  return { name: m.op('Mul', [x.name, s]), shape: x.shape };
}

/** Slice [start, end) of the last axis. */
export function sliceLast(m: ModuleBuilder, x: Value, start: number, end: number): Value {
  const y = m.op('Slice', [x.name, m.constInt64([start]), m.constInt64([end]), m.constInt64([-1]), m.constInt64([1])]);
  return { name: y, shape: withLast(x, end - start) };
}

/** [B, n, heads*d] -> [B*heads, n, d] (diffusers head_to_batch_dim). */
export function headsToBatch(m: ModuleBuilder, x: Value, heads: number): Value {
  const [, n, dim] = x.shape as [number, number, number];
  const split = m.reshapeBatch(x, [n, heads, dim / heads]);
  return m.reshapeBatch(m.transpose(split, [0, 2, 1, 3]), [n, dim / heads], { mul: heads });
}

/** [B*heads, n, d] -> [B, n, heads*d] (diffusers batch_to_head_dim). */
export function batchToHeads(m: ModuleBuilder, x: Value, heads: number): Value {
  const [, n, d] = x.shape as [number, number, number];
  const split = m.reshapeBatch(x, [heads, n, d], { div: heads });
  return m.reshapeBatch(m.transpose(split, [0, 2, 1, 3]), [n, heads * d]);
}

/** Options of diffusers' Attention that change the exported graph. */
export interface AttentionOptions {
  /** Biased q/k/v projections (the VAE's attention). */
  qkvBias?: boolean;
  /**
   * diffusers' upcast_attention ('attention': q and k in float32) or upcast_softmax ('softmax': the scores
   * in float32), the probabilities cast back. No-ops in a float32 graph, where torch traces no Cast.
   */
  upcast?: 'attention' | 'softmax';
}

/**
 * diffusers Attention (attn1: self, attn2: cross when `context` is given), in the caller's scope:
 * softmax(Q K^T * d^-1/2) V with heads folded into the batch, so the Softmax is [B*heads, n_q, n_kv].
 */
export function attention(m: ModuleBuilder, x: Value, context: Value | null, heads: number, opts: AttentionOptions = {}): Value {
  const dim = last(x);
  const kv = context ?? x;
  const bias = { bias: opts.qkvBias ?? false };
  const q = headsToBatch(m, linear(m, x, 'to_q', dim, bias), heads);
  const k = headsToBatch(m, linear(m, kv, 'to_k', dim, bias), heads);
  const v = headsToBatch(m, linear(m, kv, 'to_v', dim, bias), heads);
  const kT = m.transpose(k, [0, 2, 1]);
  const upcast = m.floatType === DataType.FLOAT ? undefined : opts.upcast;
  const toFloat = (t: string) => m.op('Cast', [t], { to: DataType.FLOAT });
  const [qs, ks] = upcast === 'attention' ? [toFloat(q.name), toFloat(kT.name)] : [q.name, kT.name];
  const qk = m.op('MatMul', [qs, ks]);
  const scale = 1 / Math.sqrt(dim / heads);
  let scores = m.op('Mul', [qk, upcast === 'attention' ? m.constant(fromNumbers(DataType.FLOAT, [], [scale])) : m.constFloat(scale)]);
  if (upcast === 'softmax') scores = toFloat(scores);
  let probs = m.op('Softmax', [scores], { axis: -1 });
  if (upcast) probs = m.op('Cast', [probs], { to: m.floatType });
  const out: Value = { name: m.op('MatMul', [probs, v.name]), shape: q.shape };
  return linear(m, batchToHeads(m, out, heads), 'to_out.0', dim);
}

/** diffusers FeedForward with GEGLU (`ff/net.0/proj`, `ff/net.2`), inner width mult * dim. */
export function feedForwardGeglu(m: ModuleBuilder, x: Value, mult = 4): Value {
  const dim = last(x);
  const inner = dim * mult;
  return m.scoped('ff', () => {
    const gated = m.scoped('net.0', () => {
      const proj = linear(m, x, 'proj', inner * 2);
      const h = sliceLast(m, proj, 0, inner);
      const gate = gelu(m, sliceLast(m, proj, inner, inner * 2));
      return { name: m.op('Mul', [h.name, gate.name]), shape: h.shape };
    });
    return linear(m, gated, 'net.2', dim);
  });
}

/** diffusers ResnetBlock2D (`resnets.N`), with the time embedding added after conv1 when given. */
export function resnetBlock(m: ModuleBuilder, x: Value, temb: Value | null, name: string, cout: number, groups: number, eps = 1e-5): Value {
  return m.scoped(name, () => {
    let h = conv2d(m, silu(m, groupNorm(m, x, 'norm1', groups, eps)), 'conv1', cout, 3);
    if (temb) {
      const t = gemm(m, silu(m, temb), 'time_emb_proj', cout);
      h = { name: m.op('Add', [h.name, m.op('Unsqueeze', [t.name, m.constInt64([2, 3])])]), shape: h.shape };
    }
    h = conv2d(m, silu(m, groupNorm(m, h, 'norm2', groups, eps)), 'conv2', cout, 3);
    const skip = x.shape[1] === cout ? x : conv2d(m, x, 'conv_shortcut', cout, 1, { pad: 0 });
    return { name: m.op('Add', [skip.name, h.name]), shape: h.shape };
  });
}

/**
 * diffusers Transformer2DModel as SD 2.x configures it (`attentions.N`): GroupNorm, linear proj_in on
 * [B, HW, C], one BasicTransformerBlock (attn1 self, attn2 cross, GEGLU feed-forward), proj_out, residual.
 */
export function transformer2d(
  m: ModuleBuilder,
  x: Value,
  context: Value,
  name: string,
  heads: number,
  groups: number,
  opts: Pick<AttentionOptions, 'upcast'> = {},
): Value {
  const [, c, hgt, wid] = x.shape as [number, number, number, number];
  return m.scoped(name, () => {
    const normed = groupNorm(m, x, 'norm', groups, 1e-6);
    let h = linear(m, m.reshapeBatch(m.transpose(normed, [0, 2, 3, 1]), [hgt * wid, c]), 'proj_in', c);
    h = m.scoped('transformer_blocks.0', () => {
      const add = (a: Value, b: Value): Value => ({ name: m.op('Add', [a.name, b.name]), shape: b.shape });
      let y = add(
        m.scoped('attn1', () => attention(m, layerNorm(m, h, 'norm1'), null, heads, opts)),
        h,
      );
      y = add(
        m.scoped('attn2', () => attention(m, layerNorm(m, y, 'norm2'), context, heads, opts)),
        y,
      );
      return add(feedForwardGeglu(m, layerNorm(m, y, 'norm3')), y);
    });
    const out = linear(m, h, 'proj_out', c);
    const spatial = m.transpose(m.reshapeBatch(out, [hgt, wid, c]), [0, 3, 1, 2]);
    return { name: m.op('Add', [spatial.name, x.name]), shape: x.shape };
  });
}

/**
 * diffusers Attention as AutoencoderKL's mid block uses it (`attentions.0`): one head over the HW cells,
 * biased q/k/v, group_norm first and the residual added back.
 */
export function vaeAttention(m: ModuleBuilder, x: Value, name: string, groups: number, opts: Pick<AttentionOptions, 'upcast'> = {}): Value {
  const [, c, hgt, wid] = x.shape as [number, number, number, number];
  return m.scoped(name, () => {
    const normed = groupNorm(m, x, 'group_norm', groups, 1e-6);
    const tokens = m.transpose(m.reshapeBatch(normed, [c, hgt * wid]), [0, 2, 1]);
    const attended = attention(m, tokens, null, 1, { qkvBias: true, ...opts });
    const spatial = m.reshapeBatch(m.transpose(attended, [0, 2, 1]), [c, hgt, wid]);
    return { name: m.op('Add', [spatial.name, x.name]), shape: x.shape };
  });
}

/** Downsample2D (`downsamplers.0`): stride-2 conv; `asymmetricPad` is the VAE's F.pad(0,1,0,1) + unpadded conv. */
export function downsample(m: ModuleBuilder, x: Value, opts: { asymmetricPad?: boolean } = {}): Value {
  const c = x.shape[1]!;
  return m.scoped('downsamplers.0', () => {
    if (!opts.asymmetricPad) return conv2d(m, x, 'conv', c, 3, { stride: 2, pad: 1 });
    const padded = m.op('Pad', [x.name, m.constInt64([0, 0, 0, 0, 0, 0, 1, 1]), m.constFloat(0)], { mode: 'constant' });
    const [b, , h, w] = x.shape as [number, number, number, number];
    return conv2d(m, { name: padded, shape: [b, c, h + 1, w + 1] }, 'conv', c, 3, { stride: 2, pad: 0 });
  });
}

/** Upsample2D (`upsamplers.0`): Resize nearest x2 (torch's F.interpolate export), then a 3x3 conv. */
export function upsample(m: ModuleBuilder, x: Value): Value {
  const [b, c, h, w] = x.shape as [number, number, number, number];
  return m.scoped('upsamplers.0', () => {
    const scales = m.constant(fromNumbers(DataType.FLOAT, [4], [1, 1, 2, 2])); // Resize's scales are float32 in any model
    const resized = m.op('Resize', [x.name, '', scales], {
      coordinate_transformation_mode: 'asymmetric',
      cubic_coeff_a: { float: -0.75 },
      mode: 'nearest',
      nearest_mode: 'floor',
    });
    return conv2d(m, { name: resized, shape: [b, c, h * 2, w * 2] }, 'conv', c, 3);
  });
}

/**
 * diffusers Timesteps (`time_proj`, flip_sin_to_cos, freq_shift 0) then TimestepEmbedding
 * (`time_embedding`: linear_1, SiLU, linear_2): timestep [B] int64 -> [B, embedDim]. The sinusoids are
 * float32 in any model; an fp16 UNet casts them (`t_emb.to(dtype=sample.dtype)`).
 */
export function timestepEmbedding(m: ModuleBuilder, timestep: Value, dim: number, embedDim: number): Value {
  const half = dim / 2;
  const freqs = Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  const proj = m.scoped('time_proj', () => {
    const t = m.op('Cast', [m.op('Unsqueeze', [timestep.name, m.constInt64([1])])], { to: DataType.FLOAT });
    const args = m.op('Mul', [t, m.constant(fromNumbers(DataType.FLOAT, [1, half], freqs))]);
    const sinCos: Value = { name: m.op('Concat', [m.op('Sin', [args]), m.op('Cos', [args])], { axis: -1 }), shape: [-1, dim] };
    const cos = sliceLast(m, sinCos, half, dim),
      sin = sliceLast(m, sinCos, 0, half); // flip_sin_to_cos
    return { name: m.op('Concat', [cos.name, sin.name], { axis: -1 }), shape: [-1, dim] };
  });
  const tEmb: Value = m.floatType === DataType.FLOAT ? proj : { name: m.op('Cast', [proj.name], { to: m.floatType }), shape: proj.shape };
  return m.scoped('time_embedding', () => gemm(m, silu(m, gemm(m, tEmb, 'linear_1', embedDim)), 'linear_2', embedDim));
}
