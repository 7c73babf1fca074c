/**
 * A UNet-like model generated at bench time, for a compute-bound training-step measurement (the committed
 * fixture is 16x16 and overhead-bound). Same block structure as the fixture, written the way torch.onnx
 * exports it (GroupNorm as Reshape -> InstanceNormalization -> Reshape -> Mul -> Add, SiLU as x * Sigmoid(x),
 * attention as MatMul/Softmax with a head split by Reshape/Transpose), but with no time or text
 * conditioning: conv_in, a resnet block, a stride-2 downsample, a resnet block with a 1x1 shortcut, a
 * self-attention block, nearest 2x upsampling, a skip Concat, a resnet block, GroupNorm + SiLU + conv_out,
 * and an MSE loss against a target. Weights are deterministic pseudo-random (He-scaled).
 */
import { Graph, attrs, type AttrValue } from '../graph.js';
import { hostToTensorProto, type OnnxModel } from '../model.js';
import { DataType, fromNumbers, int64s, numel, tensorBytes, type HostTensor } from '../tensor.js';

export interface UnetLikeConfig {
  batch: number;
  size: number;
  channels: [number, number];
  heads: number;
  groups: number;
}

export const LARGE_CONFIG: UnetLikeConfig = { batch: 2, size: 64, channels: [64, 128], heads: 4, groups: 8 };

export function unetLike(cfg: UnetLikeConfig): OnnxModel {
  const g = new Graph({ name: 'unet_like' });
  let seed = 12345,
    counter = 0;
  const rand = (n: number, scale: number) =>
    Array.from({ length: n }, () => {
      seed = (seed * 16807) % 2147483647;
      return ((seed / 2147483647) * 2 - 1) * scale;
    });
  const name = (hint: string) => `${hint}_${counter++}`;
  const init = (hint: string, t: HostTensor) => {
    const n = name(hint);
    g.addInitializer({ name: n, dtype: t.dtype, dims: t.dims, data: tensorBytes(t) });
    return n;
  };
  const weight = (hint: string, dims: number[], fanIn: number) => init(hint, fromNumbers(DataType.FLOAT, dims, rand(numel(dims), Math.sqrt(3 / fanIn))));
  const fill = (hint: string, dims: number[], v: number) => init(hint, fromNumbers(DataType.FLOAT, dims, new Array<number>(numel(dims)).fill(v)));
  const ints = (v: number[]) => init('shape', int64s(v));
  // Non-parameters as Constant nodes, as torch.onnx writes them (so "all initializers" means the weights).
  const constant = (t: HostTensor) => {
    const out = name('const');
    g.addNode({
      opType: 'Constant',
      inputs: [],
      outputs: [out],
      attributes: attrs({ value: { tensor: hostToTensorProto(out, t) } }),
      name: name('Constant_node'),
    });
    return out;
  };
  const op = (opType: string, inputs: string[], a: Record<string, AttrValue | undefined> = {}) => {
    const out = name(opType.toLowerCase());
    g.addNode({ opType, inputs, outputs: [out], attributes: attrs(a), name: name(`${opType}_node`) });
    return out;
  };
  const { batch: N, size: S0, heads, groups: G } = cfg;

  const conv = (x: string, cin: number, cout: number, k: number, stride = 1) =>
    op('Conv', [x, weight('conv.weight', [cout, cin, k, k], cin * k * k), fill('conv.bias', [cout], 0.01)], {
      kernel_shape: [k, k],
      pads: k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0],
      strides: [stride, stride],
    });
  const groupNorm = (x: string, c: number, hw: number) => {
    const r = op('Reshape', [x, ints([N, G, -1])]);
    const inorm = op(
      'InstanceNormalization',
      [r, constant(fromNumbers(DataType.FLOAT, [G], new Array<number>(G).fill(1))), constant(fromNumbers(DataType.FLOAT, [G], new Array<number>(G).fill(0)))],
      { epsilon: { float: 1e-5 } },
    );
    const back = op('Reshape', [inorm, ints([N, c, hw, hw])]);
    return op('Add', [op('Mul', [back, fill('gn.weight', [c, 1, 1], 1)]), fill('gn.bias', [c, 1, 1], 0)]);
  };
  const silu = (x: string) => op('Mul', [x, op('Sigmoid', [x])]);
  const resnet = (x: string, cin: number, cout: number, hw: number) => {
    let h = conv(silu(groupNorm(x, cin, hw)), cin, cout, 3);
    h = conv(silu(groupNorm(h, cout, hw)), cout, cout, 3);
    return op('Add', [cin === cout ? x : conv(x, cin, cout, 1), h]);
  };
  const linear = (x: string, cin: number, cout: number, bias = true) => {
    const y = op('MatMul', [x, weight('linear.weight', [cin, cout], cin)]);
    return bias ? op('Add', [y, fill('linear.bias', [cout], 0.01)]) : y;
  };
  const attention = (x: string, c: number, hw: number) => {
    const T = hw * hw,
      D = c / heads;
    const tokens = op('Transpose', [op('Reshape', [groupNorm(x, c, hw), ints([N, c, T])])], { perm: [0, 2, 1] }); // [N, T, C]
    const split = (t: string) =>
      op('Reshape', [op('Transpose', [op('Reshape', [t, ints([N, T, heads, D])])], { perm: [0, 2, 1, 3] }), ints([N * heads, T, D])]);
    const q = split(linear(tokens, c, c, false)),
      k = split(linear(tokens, c, c, false)),
      v = split(linear(tokens, c, c, false));
    const scores = op('Mul', [op('MatMul', [q, op('Transpose', [k], { perm: [0, 2, 1] })]), fill('attn.scale', [], 1 / Math.sqrt(D))]);
    const ctx = op('MatMul', [op('Softmax', [scores], { axis: -1 }), v]); // [N*H, T, D]
    const merged = op('Reshape', [op('Transpose', [op('Reshape', [ctx, ints([N, heads, T, D])])], { perm: [0, 2, 1, 3] }), ints([N, T, c])]);
    const out = op('Reshape', [op('Transpose', [linear(merged, c, c)], { perm: [0, 2, 1] }), ints([N, c, hw, hw])]);
    return op('Add', [x, out]);
  };

  const [C0, C1] = cfg.channels,
    S1 = S0 / 2;
  g.addInput({ name: 'sample', dtype: DataType.FLOAT, shape: [N, 4, S0, S0] });
  g.addInput({ name: 'target', dtype: DataType.FLOAT, shape: [N, 4, S0, S0] });
  const h0 = resnet(conv('sample', 4, C0, 3), C0, C0, S0);
  const h1 = attention(resnet(conv(h0, C0, C0, 3, 2), C0, C1, S1), C1, S1);
  const up = op('Resize', [h1, '', constant(fromNumbers(DataType.FLOAT, [4], [1, 1, 2, 2]))], { mode: 'nearest' });
  const h2 = resnet(op('Concat', [up, h0], { axis: 1 }), C1 + C0, C0, S0);
  const out = conv(silu(groupNorm(h2, C0, S0)), C0, 4, 3);
  const diff = op('Sub', [out, 'target']);
  const loss = op('ReduceMean', [op('Mul', [diff, diff])], { keepdims: 0 });
  g.addNode({ opType: 'Identity', inputs: [loss], outputs: ['loss'], name: 'loss_identity' });
  g.addOutput({ name: 'loss', dtype: DataType.FLOAT, shape: [] });
  return {
    irVersion: 8,
    opsetImports: [{ domain: '', version: 17 }],
    producerName: 'ort-training-bench',
    producerVersion: '',
    graph: g,
    metadata: {},
    extra: {},
  };
}
