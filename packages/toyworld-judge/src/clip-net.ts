/**
 * The toy CLIP's two towers and its contrastive loss.
 *  - vision: pixel_values [B,3,64,64] (CLIP-normalised with mean = std = 0.5, i.e. pixel/127.5 - 1) -> strided
 *    CNN (Conv, GroupNorm, SiLU; 32/64/128 channels) -> mean over the 8x8 grid -> MLP -> image_embeds [B,E];
 *  - text: input_ids [B,T] (the CLIP BPE tokenizer's ids, padded), attention_mask [B,T] -> token + position
 *    embeddings -> two token convolutions of width 3 (they bind a word to its neighbours: "red cat",
 *    "on top") with a residual -> mean over the unmasked tokens -> MLP -> text_embeds [B,E].
 * Loss (InfoNCE, CLIP's symmetric form): logits = exp(logit_scale) * cos(image_i, text_j);
 * loss = -(sum T * LogSoftmax_rows(logits) + sum T * LogSoftmax_cols(logits)) / 2B, with T the row-normalised
 * "same caption" matrix (the identity unless a batch repeats a caption, as short ones like "a cat" do).
 */
import { DataType } from '@dynasyn/ort-training';
import { Net, type Value, type Weights } from './nn.js';

export interface ClipDims {
  vocab: number;
  /** Tokens per caption. */
  context: number;
  embed: number;
  /** Token width and text hidden width. */
  tokenWidth: number;
  textWidth: number;
  vision: [number, number, number];
}

export const CLIP_IMAGE_SIZE = 64;
export const CLIP_CONTEXT = 48;
export const LOGIT_SCALE_INIT = Math.log(1 / 0.07);

export const clipDims = (vocab: number, overrides: Partial<ClipDims> = {}): ClipDims => ({
  vocab,
  context: CLIP_CONTEXT,
  embed: 64,
  tokenWidth: 64,
  textWidth: 128,
  vision: [32, 64, 128],
  ...overrides,
});

export function imageEmbeds(net: Net, pixels: Value, d: ClipDims): Value {
  const [c1, c2, c3] = d.vision;
  let x = net.convBlock(pixels, 'vision.stem', c1, 3, 2);
  x = net.convBlock(x, 'vision.b1', c1, 3);
  x = net.convBlock(x, 'vision.down2', c2, 3, 2);
  x = net.convBlock(x, 'vision.b2', c2, 3);
  x = net.convBlock(x, 'vision.down3', c3, 3, 2);
  x = net.convBlock(x, 'vision.b3', c3, 3);
  const h = net.silu(net.linear(net.spatialMean(x), 'vision.fc1', c3));
  return net.linear(h, 'vision.proj', d.embed);
}

export function textEmbeds(net: Net, ids: Value, mask: Value, d: ClipDims): Value {
  const [b, T] = ids.shape as [number, number];
  const table = net.param('text.token_embedding', [d.vocab, d.tokenWidth], { std: 0.1 });
  const pos = net.param('text.position_embedding', [T, d.tokenWidth], { std: 0.02 });
  const tokens = net.op('Add', [net.op('Gather', [table, ids.name], { axis: 0 }), pos]); // [B,T,W]
  const grid: Value = { name: net.op('Unsqueeze', [net.op('Transpose', [tokens], { perm: [0, 2, 1] }), net.constInts([2])]), shape: [b, d.tokenWidth, 1, T] };
  const h1 = net.silu(net.conv(grid, 'text.conv1', d.textWidth, 3, 1, [1, 3]));
  const h2 = net.silu(net.conv(h1, 'text.conv2', d.textWidth, 3, 1, [1, 3]));
  const h: Value = { name: net.op('Add', [h1.name, h2.name]), shape: h1.shape };
  const m: Value = {
    name: net.op('Reshape', [net.op('Cast', [mask.name], { to: DataType.FLOAT }), net.constInts([0, 1, 1, T])]),
    shape: [b, 1, 1, T],
  };
  const pooled = net.regionMean(h, m);
  return net.linear(net.silu(net.linear(pooled, 'text.fc1', d.textWidth)), 'text.proj', d.embed);
}

/** x / |x| per row. */
function unit(net: Net, x: Value): Value {
  const sq = net.op('ReduceSum', [net.op('Mul', [x.name, x.name]), net.constInts([1])], { keepdims: 1 });
  return { name: net.op('Div', [x.name, net.op('Sqrt', [net.op('Add', [sq, net.constFloat(1e-8)])])]), shape: x.shape };
}

/** Training graph: pixel_values, input_ids, attention_mask, targets [B,B] -> loss (and logit_scale_out). */
export function buildClipTrainingNet(batch: number, d: ClipDims, seed: string, weights?: Weights): Net {
  const net = new Net('toyworld_clip_train', seed, weights);
  const S = CLIP_IMAGE_SIZE,
    T = d.context;
  const pixels: Value = { name: net.input('pixel_values', DataType.FLOAT, [batch, 3, S, S]), shape: [batch, 3, S, S] };
  const ids: Value = { name: net.input('input_ids', DataType.INT64, [batch, T]), shape: [batch, T] };
  const mask: Value = { name: net.input('attention_mask', DataType.INT64, [batch, T]), shape: [batch, T] };
  const targets = net.input('targets', DataType.FLOAT, [batch, batch]);
  const img = unit(net, imageEmbeds(net, pixels, d));
  const txt = unit(net, textEmbeds(net, ids, mask, d));
  const scale = net.param('logit_scale', [1], { fill: LOGIT_SCALE_INIT });
  const sim = net.op('MatMul', [img.name, net.op('Transpose', [txt.name], { perm: [1, 0] })]);
  const logits = net.op('Mul', [sim, net.op('Exp', [scale])]);
  const ce = (axis: number) => net.op('ReduceSum', [net.op('Mul', [net.op('LogSoftmax', [logits], { axis }), targets])], { keepdims: 0 });
  const loss = net.op('Mul', [net.op('Add', [ce(1), ce(0)]), net.constFloat(-1 / (2 * batch))]);
  net.graph.addNode({ opType: 'Identity', inputs: [loss], outputs: ['loss'], name: 'loss_node' });
  net.graph.addNode({ opType: 'Identity', inputs: [scale], outputs: ['logit_scale_out'], name: 'logit_scale_node' });
  net.output('loss', []);
  net.output('logit_scale_out', [1]);
  return net;
}

/** Exported vision_model.onnx: pixel_values [batch,3,64,64] -> image_embeds [batch,E]. */
export function buildVisionNet(d: ClipDims, weights: Weights): Net {
  const net = new Net('toyworld_clip_vision', 'export', weights);
  const S = CLIP_IMAGE_SIZE;
  const pixels: Value = { name: net.input('pixel_values', DataType.FLOAT, ['batch', 3, S, S]), shape: [1, 3, S, S] };
  const e = imageEmbeds(net, pixels, d);
  net.graph.addNode({ opType: 'Identity', inputs: [e.name], outputs: ['image_embeds'], name: 'image_embeds_node' });
  net.output('image_embeds', ['batch', d.embed]);
  return net;
}

/** Exported text_model.onnx: input_ids, attention_mask [batch,T] int64 -> text_embeds [batch,E]. */
export function buildTextNet(d: ClipDims, weights: Weights): Net {
  const net = new Net('toyworld_clip_text', 'export', weights);
  const T = d.context;
  const ids: Value = { name: net.input('input_ids', DataType.INT64, ['batch', T]), shape: [1, T] };
  const mask: Value = { name: net.input('attention_mask', DataType.INT64, ['batch', T]), shape: [1, T] };
  const e = textEmbeds(net, ids, mask, d);
  net.graph.addNode({ opType: 'Identity', inputs: [e.name], outputs: ['text_embeds'], name: 'text_embeds_node' });
  net.output('text_embeds', ['batch', d.embed]);
  return net;
}
