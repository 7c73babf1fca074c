/**
 * The tiny CLIPTextModel (transformers' layout and export): token + position embeddings, causal
 * pre-LayerNorm transformer layers with biased q/k/v and quick_gelu MLPs, final_layer_norm; the pooled
 * output is the hidden state at each prompt's ArgMax(input_ids) (CLIP's end token has the largest id).
 */
import { DataType, fromNumbers, type OnnxModel } from '@dynasyn/ort-training';
import { TINY_BUNDLE_FACTS } from './facts.js';
import { ModuleBuilder, batchedInput, type Value } from './module-builder.js';
import { batchToHeads, layerNorm, linear, quickGelu } from './nn.js';

/** Most negative float32, which transformers fills the causal mask with (torch.finfo(float32).min). */
const FLOAT32_MIN = -3.4028234663852886e38;

/** transformers CLIPAttention (`self_attn`): q scaled before Q K^T, mask added on [B, heads, T, T]. */
function clipAttention(m: ModuleBuilder, x: Value, mask: string, heads: number): Value {
  const [, tokens, dim] = x.shape as [number, number, number];
  const headDim = dim / heads;
  const q0 = linear(m, x, 'q_proj', dim);
  const q: Value = { name: m.op('Mul', [q0.name, m.constFloat(1 / Math.sqrt(headDim))]), shape: q0.shape };
  const toHeads = (t: Value): Value =>
    // view(B, T, H, d).transpose(1, 2) then view(B*H, T, d)
    m.reshapeBatch(m.transpose(m.reshapeBatch(t, [tokens, heads, headDim]), [0, 2, 1, 3]), [tokens, headDim], { mul: heads });
  const qh = toHeads(q),
    kh = toHeads(linear(m, x, 'k_proj', dim)),
    vh = toHeads(linear(m, x, 'v_proj', dim));
  const scores: Value = { name: m.op('MatMul', [qh.name, m.transpose(kh, [0, 2, 1]).name]), shape: [-1, tokens, tokens] };
  const perHead = m.reshapeBatch(scores, [heads, tokens, tokens], { div: heads });
  const masked: Value = { name: m.op('Add', [perHead.name, mask]), shape: perHead.shape };
  const probs = m.op('Softmax', [m.reshapeBatch(masked, [tokens, tokens], { mul: heads }).name], { axis: -1 });
  const out: Value = { name: m.op('MatMul', [probs, vh.name]), shape: [-1, tokens, headDim] };
  return linear(m, batchToHeads(m, out, heads), 'out_proj', dim);
}

export function buildTinyTextEncoder(seed: number, vocabSize: number): OnnxModel {
  const { textEmbedDim: dim, maxTokens: tokens } = TINY_BUNDLE_FACTS;
  const { layers, heads, intermediateSize } = TINY_BUNDLE_FACTS.textEncoder;
  const m = new ModuleBuilder(`${seed}/text_encoder`);
  const ids: Value = { name: 'input_ids', shape: [-1, tokens] };

  const { hidden, pooled } = m.scoped('text_model', () => {
    let h = m.scoped('embeddings', () => {
      const tok = m.scoped('token_embedding', () => m.op('Gather', [m.param('weight', [vocabSize, dim], { std: 1 }), ids.name], { axis: 0 }));
      const positionIds = m.buffer(
        'text_model.embeddings.position_ids',
        fromNumbers(
          DataType.INT64,
          [1, tokens],
          Array.from({ length: tokens }, (_, i) => i),
        ),
      );
      const sliced = m.op('Slice', [positionIds, m.constInt64([0]), m.constInt64([tokens]), m.constInt64([1]), m.constInt64([1])]);
      const pos = m.scoped('position_embedding', () => m.op('Gather', [m.param('weight', [tokens, dim], { std: 1 }), sliced], { axis: 0 }));
      return { name: m.op('Add', [tok, pos]), shape: [-1, tokens, dim] };
    });
    // Causal mask [B, 1, T, T]: float32 min above the diagonal, as transformers builds it.
    const filled = m.op('ConstantOfShape', [m.batchShape(ids, [tokens, tokens])], {
      value: { tensor: { dims: [1], data_type: DataType.FLOAT, float_data: [FLOAT32_MIN] } },
    });
    const mask = m.op('Unsqueeze', [m.op('Trilu', [filled, m.constInt64Scalar(1)], { upper: 1 }), m.constInt64([1])]);

    m.scoped('encoder', () => {
      for (let l = 0; l < layers; l++) {
        h = m.scoped(`layers.${l}`, () => {
          const attn = m.scoped('self_attn', () => clipAttention(m, layerNorm(m, h, 'layer_norm1'), mask, heads));
          const x: Value = { name: m.op('Add', [h.name, attn.name]), shape: h.shape };
          const mlp = m.scoped('mlp', () => linear(m, quickGelu(m, linear(m, layerNorm(m, x, 'layer_norm2'), 'fc1', intermediateSize)), 'fc2', dim));
          return { name: m.op('Add', [x.name, mlp.name]), shape: x.shape };
        });
      }
    });
    const last = layerNorm(m, h, 'final_layer_norm');
    // pooled = last[arange(B), argmax(input_ids)], flattened to one Gather over B*T rows
    const eos = m.op('ArgMax', [ids.name], { axis: -1, keepdims: 0 });
    const rows = m.op('Range', [m.constInt64Scalar(0), m.batchOf(ids), m.constInt64Scalar(1)]);
    const flatIndex = m.op('Add', [m.op('Mul', [rows, m.constInt64Scalar(tokens)]), eos]);
    const flat = m.op('Reshape', [last.name, m.constInt64([-1, dim])], { allowzero: 0 });
    return { hidden: last, pooled: { name: m.op('Gather', [flat, flatIndex], { axis: 0 }), shape: [-1, dim] } };
  });
  return m.finish(
    [batchedInput('input_ids', DataType.INT64, [tokens])],
    [
      { value: hidden, name: 'last_hidden_state' },
      { value: pooled, name: 'pooler_output' },
    ],
  );
}
