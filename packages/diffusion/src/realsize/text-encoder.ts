/**
 * transformers' CLIPTextModel (4.3x, the versions optimum exports SD 2.1 with) shaped as torch.onnx traces
 * it with optimum's dynamic axes: input_ids [batch, sequence_length] int64; every size comes from Shape ->
 * Gather, constants only where the dimension is static (width, heads, head size).
 *
 *   CLIPTextTransformer: input_ids.view(-1, input_shape[-1])   Reshape(ids, Concat(-1, Gather(Shape(ids), -1)))
 *   CLIPTextEmbeddings:  position_ids[:, :seq_length]           Slice of the int64 [1, 77] buffer
 *                        token_embedding(input_ids) + position_embedding(position_ids)
 *   _make_causal_mask:   full((T, T), finfo(dtype).min) -> masked_fill(arange < (arange + 1).view(T, 1), 0)
 *                        -> [None, None] -> expand(B, 1, T, T)
 *   CLIPAttention:       q * scale, views to [B*H, T, d], bmm, view [B, H, T, T] + mask, view back, softmax
 *   CLIPMLP:             fc1 -> exact GELU (Erf; hidden_act "gelu" in SD 2.x) -> fc2
 *   pooler_output:       last[arange(B), input_ids.to(int).argmax(-1)] (eos_token_id 2: the legacy argmax
 *                        path), which torch exports as Flatten + Gather at arange * T + argmax
 */
import { DataType, fromNumbers, type OnnxModel } from '@dynasyn/ort-training';
import { BATCH_DIM, type ModuleBuilder, type Value } from '../tiny/module-builder.js';
import { gelu, layerNorm, linear } from '../tiny/nn.js';
import type { SdBundleConfig } from './config.js';

const SEQUENCE_DIM = 'sequence_length';
/** torch.finfo(dtype).min, the causal mask's fill. */
const FINFO_MIN: Record<number, number> = { [DataType.FLOAT]: -3.4028234663852886e38, [DataType.FLOAT16]: -65504 };

/** Shape arithmetic as torch traces it: sizes are int64 scalars, shapes Concats of unsqueezed sizes. */
class Sizes {
  constructor(private readonly m: ModuleBuilder) {}
  /** `x.size(axis)`. */
  of(x: string, axis: number): string {
    return this.m.op('Gather', [this.m.op('Shape', [x]), this.m.constInt64Scalar(axis)], { axis: 0 });
  }
  /** A 1-D shape from sizes (scalar tensors) and static numbers. */
  shape(parts: (string | number)[]): string {
    const m = this.m;
    return m.op(
      'Concat',
      parts.map((p) => (typeof p === 'number' ? m.constInt64([p]) : m.op('Unsqueeze', [p, m.constInt64([0])]))),
      { axis: 0 },
    );
  }
  reshape(x: Value, parts: (string | number)[], shape: number[]): Value {
    return { name: this.m.op('Reshape', [x.name, this.shape(parts)], { allowzero: 0 }), shape };
  }
}

/** CLIPAttention (`self_attn`) with the causal mask [B, 1, T, T]. */
function clipAttention(m: ModuleBuilder, s: Sizes, x: Value, mask: string, heads: number): Value {
  const dim = x.shape[2]!,
    headDim = dim / heads;
  const bsz = s.of(x.name, 0),
    tgt = s.of(x.name, 1);
  const q0 = linear(m, x, 'q_proj', dim);
  const q: Value = { name: m.op('Mul', [q0.name, m.constFloat(headDim ** -0.5)]), shape: q0.shape };
  // _shape(t, seq, bsz): view(bsz, seq, H, d).transpose(1, 2)
  const split = (t: Value, seq: string | number) => m.transpose(s.reshape(t, [bsz, seq, heads, headDim], [-1, -1, heads, headDim]), [0, 2, 1, 3]);
  const k = split(linear(m, x, 'k_proj', dim), -1);
  const v = split(linear(m, x, 'v_proj', dim), -1);
  const rows = m.op('Mul', [bsz, m.constInt64Scalar(heads)]); // bsz * num_heads
  const proj = (t: Value) => s.reshape(t, [rows, -1, headDim], [-1, -1, headDim]);
  const [qh, kh, vh] = [proj(split(q, tgt)), proj(k), proj(v)];
  const src = s.of(kh.name, 1);
  const scores: Value = { name: m.op('MatMul', [qh.name, m.transpose(kh, [0, 2, 1]).name]), shape: [-1, -1, -1] };
  const perHead = s.reshape(scores, [bsz, heads, tgt, src], [-1, heads, -1, -1]);
  const masked: Value = { name: m.op('Add', [perHead.name, mask]), shape: perHead.shape };
  const probs = m.op('Softmax', [s.reshape(masked, [rows, tgt, src], [-1, -1, -1]).name], { axis: -1 });
  const out: Value = { name: m.op('MatMul', [probs, vh.name]), shape: [-1, -1, headDim] };
  const merged = m.transpose(s.reshape(out, [bsz, heads, tgt, headDim], [-1, heads, -1, headDim]), [0, 2, 1, 3]);
  return linear(m, s.reshape(merged, [bsz, tgt, dim], [-1, -1, dim]), 'out_proj', dim);
}

/** _make_causal_mask(input_shape, dtype): [B, 1, T, T], 0 on and below the diagonal, finfo(dtype).min above. */
function causalMask(m: ModuleBuilder, s: Sizes, inputShape: string): string {
  const bsz = m.op('Gather', [inputShape, m.constInt64Scalar(0)], { axis: 0 });
  const tgt = m.op('Gather', [inputShape, m.constInt64Scalar(-1)], { axis: 0 });
  // torch.full's default dtype is float32 whatever the model's; mask.to(dtype) casts it afterwards
  const fill = { tensor: { dims: [1], data_type: DataType.FLOAT, float_data: [FINFO_MIN[m.floatType]!] } };
  const full = m.op('ConstantOfShape', [s.shape([tgt, tgt])], { value: fill });
  const n = s.of(full, -1);
  const cond = m.op('Range', [m.constInt64Scalar(0), n, m.constInt64Scalar(1)]);
  const column = m.op('Reshape', [m.op('Add', [cond, m.constInt64Scalar(1)]), s.shape([n, 1])], { allowzero: 0 });
  const zero = m.constant(fromNumbers(DataType.FLOAT, [], [0]));
  let mask = m.op('Where', [m.op('Less', [cond, column]), zero, full]);
  if (m.floatType !== DataType.FLOAT) mask = m.op('Cast', [mask], { to: m.floatType });
  const expanded = m.op('Unsqueeze', [m.op('Unsqueeze', [mask, m.constInt64([0])]), m.constInt64([1])]);
  return m.op('Expand', [expanded, s.shape([bsz, 1, tgt, tgt])]);
}

export function buildSdTextEncoder(m: ModuleBuilder, config: SdBundleConfig): OnnxModel {
  const { layers, hiddenSize: dim, heads, intermediateSize, vocabSize, maxPositions } = config.textEncoder;
  const s = new Sizes(m);
  const ids: Value = { name: 'input_ids', shape: [-1, -1] };

  const { hidden, pooled } = m.scoped('text_model', () => {
    const inputShape = m.op('Shape', [ids.name]);
    const seq = m.op('Gather', [inputShape, m.constInt64Scalar(-1)], { axis: 0 });
    const flatIds = m.op('Reshape', [ids.name, s.shape([-1, seq])], { allowzero: 0 });

    let h: Value = m.scoped('embeddings', () => {
      const seqLength = s.of(flatIds, -1);
      const positionIds = m.buffer(
        'text_model.embeddings.position_ids',
        fromNumbers(
          DataType.INT64,
          [1, maxPositions],
          Array.from({ length: maxPositions }, (_, i) => i),
        ),
      );
      const sliced = m.op('Slice', [positionIds, m.constInt64([0]), m.op('Unsqueeze', [seqLength, m.constInt64([0])]), m.constInt64([1]), m.constInt64([1])]);
      const tok = m.scoped('token_embedding', () => m.op('Gather', [m.param('weight', [vocabSize, dim], { std: 1 }), flatIds], { axis: 0 }));
      const pos = m.scoped('position_embedding', () => m.op('Gather', [m.param('weight', [maxPositions, dim], { std: 1 }), sliced], { axis: 0 }));
      return { name: m.op('Add', [tok, pos]), shape: [-1, -1, dim] };
    });
    const mask = causalMask(m, s, inputShape);

    m.scoped('encoder', () => {
      for (let l = 0; l < layers; l++) {
        h = m.scoped(`layers.${l}`, () => {
          const attn = m.scoped('self_attn', () => clipAttention(m, s, layerNorm(m, h, 'layer_norm1'), mask, heads));
          const x: Value = { name: m.op('Add', [h.name, attn.name]), shape: h.shape };
          const mlp = m.scoped('mlp', () => linear(m, gelu(m, linear(m, layerNorm(m, x, 'layer_norm2'), 'fc1', intermediateSize)), 'fc2', dim));
          return { name: m.op('Add', [x.name, mlp.name]), shape: x.shape };
        });
      }
    });
    const last = layerNorm(m, h, 'final_layer_norm');

    const rows = m.op('Range', [m.constInt64Scalar(0), s.of(last.name, 0), m.constInt64Scalar(1)]);
    const eos = m.op('ArgMax', [m.op('Cast', [flatIds], { to: DataType.INT32 })], { axis: -1, keepdims: 0, select_last_index: 0 });
    const flat = m.op('Flatten', [last.name], { axis: 2 });
    const tokens = m.op('Gather', [m.op('Shape', [last.name]), m.constInt64([1])], { axis: 0 });
    const index = m.op('Add', [eos, m.op('Mul', [rows, tokens])]);
    const gathered = m.op('Gather', [flat, index], { axis: 0 });
    const pooledRows = m.op('Reshape', [gathered, m.op('Concat', [m.op('Shape', [index]), m.constInt64([dim])], { axis: 0 })], { allowzero: 0 });
    return { hidden: last, pooled: { name: pooledRows, shape: [-1, dim] } };
  });

  return m.finish(
    [{ name: 'input_ids', dtype: DataType.INT64, shape: [BATCH_DIM, SEQUENCE_DIM] }],
    [
      { value: hidden, name: 'last_hidden_state', shape: [BATCH_DIM, SEQUENCE_DIM, dim] },
      { value: pooled, name: 'pooler_output', shape: [BATCH_DIM, dim] },
    ],
  );
}
