/**
 * The judge's two networks, small strided CNNs (Conv -> GroupNorm -> SiLU):
 *  - the classifier: crop [B,4,32,32] (subject A centred at one scale: RGB in [-1,1] + its region), patch
 *    [B,4,32,32] (the 32x32 pixels around subject A unresampled + its region: texture at the render's own
 *    resolution) and scene [B,5,32,32] (the image at half size + regions A and B; B is the partner or zeros)
 *    -> logits [B,LOGITS]. Crop features at 16x16 and 8x8 are pooled inside region A and over the crop, patch
 *    features at 32x32 and 16x16 inside region A, scene features over the image and inside each region; one
 *    MLP reads them all. (The patch branch came with the pattern head stuck at 65%: the crop's resampling
 *    turned 5-pixel stripes into something like checks.) (A first version read the 64 px image with the
 *    regions as extra channels and pooled inside them: after 140 steps its class head was at chance; a crop
 *    shows the subject at one scale and learns far faster per step and per FLOP.)
 *  - the finder: image -> class_map [B,11,16,16], per-cell logits of background or a class: where each
 *    asked subject is, when no mask comes with the image.
 * Losses (softmax cross-entropy, soft targets allowed): loss = CE(classifier) + CE(finder), each the
 * mean over examples (cells) of -sum(target * LogSoftmax(logits)).
 */
import { DataType } from '@dynasyn/ort-training';
import { FINDER_CLASSES, FINDER_GRID, HEAD_NAMES, HEADS, LOGITS } from './heads.js';
import { Net, type Value, type Weights } from './nn.js';

export const IMAGE_SIZE = 64;
/** Side of the subject crop and of the downsampled scene (judge-data.ts makes them). */
export const CROP = 32;

export interface JudgeWidths {
  /** Channels at 32x32, 16x16, 8x8. */
  classifier: [number, number, number];
  /** The patch branch's channels at 32x32 and 16x16. */
  texture: [number, number];
  hidden: number;
  finder: [number, number];
}
export const JUDGE_WIDTHS: JudgeWidths = { classifier: [32, 64, 128], texture: [24, 48], hidden: 192, finder: [24, 48] };

/** Concatenated per-head LogSoftmax of logits [B, LOGITS]. */
function headLogSoftmax(net: Net, logits: Value): Value {
  let o = 0;
  const parts: Value[] = [];
  for (const h of HEAD_NAMES) {
    const n = HEADS[h].length;
    const slice = net.sliceChannels(logits, o, o + n);
    parts.push({ name: net.op('LogSoftmax', [slice.name], { axis: 1 }), shape: slice.shape });
    o += n;
  }
  return net.concat(parts, 1);
}

/** -sum(target * logp) / count: cross-entropy against (soft) targets, as a mean over `count` rows. */
function crossEntropy(net: Net, logp: Value, target: string, count: number): string {
  const prod = net.op('Mul', [logp.name, target]);
  const sum = net.op('ReduceSum', [prod], { keepdims: 0 });
  return net.op('Mul', [sum, net.constFloat(-1 / count)]);
}

/** Subject heads read the crop's and patch's features (pooled inside region A) and the scene's; the rest the scene's. */
export function classifierLogits(net: Net, crop: Value, scene: Value, patch: Value, w: JudgeWidths = JUDGE_WIDTHS): Value {
  const [c1, c2, c3] = w.classifier;
  let x = net.convBlock(crop, 'cls.stem', c1, 3);
  x = net.convBlock(x, 'cls.down2', c2, 3, 2);
  const f16 = net.convBlock(x, 'cls.b2', c2, 3);
  x = net.convBlock(f16, 'cls.down3', c3, 3, 2);
  const f8 = net.convBlock(x, 'cls.b3', c3, 3);
  const regionA = net.sliceChannels(crop, 3, 4);
  let y = net.convBlock(scene, 'scene.stem', c1, 3, 2);
  y = net.convBlock(y, 'scene.down', c2, 3, 2);
  y = net.convBlock(y, 'scene.b1', c2, 3);
  const [t1, t2] = w.texture;
  let t = net.convBlock(patch, 'tex.stem', t1, 3);
  const t32 = net.convBlock(t, 'tex.b1', t1, 3);
  t = net.convBlock(t32, 'tex.down', t2, 3, 2);
  const t16 = net.convBlock(t, 'tex.b2', t2, 3);
  const patchRegion = net.sliceChannels(patch, 3, 4);
  const pooled = [
    net.regionMean(t32, patchRegion),
    net.regionMean(t16, net.blockMean(patchRegion, 2)),
    net.regionMean(f16, net.blockMean(regionA, 2)),
    net.regionMean(f8, net.blockMean(regionA, 4)),
    net.spatialMean(f8),
    net.spatialMean(y),
    net.regionMean(y, net.blockMean(net.sliceChannels(scene, 3, 4), 4)),
    net.regionMean(y, net.blockMean(net.sliceChannels(scene, 4, 5), 4)),
  ];
  const h = net.silu(net.linear(net.concat(pooled, 1), 'cls.fc1', w.hidden));
  return net.linear(h, 'cls.fc2', LOGITS);
}

export function finderLogits(net: Net, image: Value, w: JudgeWidths = JUDGE_WIDTHS): Value {
  const [c1, c2] = w.finder;
  let x = net.convBlock(image, 'find.stem', c1, 3, 2);
  x = net.convBlock(x, 'find.down', c2, 3, 2);
  x = net.convBlock(x, 'find.b1', c2, 3);
  x = net.convBlock(x, 'find.b2', c2, 3);
  return net.conv(x, 'find.out', FINDER_CLASSES.length, 1);
}

/** The training graph: inputs image (finder), crop, scene, patch, targets [B,LOGITS], cells [B,11,16,16]; outputs loss, loss_cls, loss_find. */
export function buildJudgeTrainingNet(batch: number, seed: string, weights?: Weights, w: JudgeWidths = JUDGE_WIDTHS): Net {
  const net = new Net('toyworld_judge_train', seed, weights);
  const S = IMAGE_SIZE,
    G = FINDER_GRID,
    C = CROP;
  const image: Value = { name: net.input('image', DataType.FLOAT, [batch, 3, S, S]), shape: [batch, 3, S, S] };
  const crop: Value = { name: net.input('crop', DataType.FLOAT, [batch, 4, C, C]), shape: [batch, 4, C, C] };
  const scene: Value = { name: net.input('scene', DataType.FLOAT, [batch, 5, C, C]), shape: [batch, 5, C, C] };
  const patch: Value = { name: net.input('patch', DataType.FLOAT, [batch, 4, C, C]), shape: [batch, 4, C, C] };
  const targets = net.input('targets', DataType.FLOAT, [batch, LOGITS]);
  const cells = net.input('cells', DataType.FLOAT, [batch, FINDER_CLASSES.length, G, G]);
  const logp = headLogSoftmax(net, classifierLogits(net, crop, scene, patch, w));
  const lossCls = crossEntropy(net, logp, targets, batch);
  const map = finderLogits(net, image, w);
  const mapLogp: Value = { name: net.op('LogSoftmax', [map.name], { axis: 1 }), shape: map.shape };
  const lossFind = crossEntropy(net, mapLogp, cells, batch * G * G);
  net.graph.addNode({ opType: 'Identity', inputs: [lossCls], outputs: ['loss_cls'], name: 'loss_cls_node' });
  net.graph.addNode({ opType: 'Identity', inputs: [lossFind], outputs: ['loss_find'], name: 'loss_find_node' });
  net.graph.addNode({ opType: 'Add', inputs: [lossCls, lossFind], outputs: ['loss'], name: 'loss_node' });
  for (const o of ['loss', 'loss_cls', 'loss_find']) net.output(o, []);
  return net;
}

/** The exported classifier: crop, scene, patch -> logits (symbolic batch). */
export function buildClassifierNet(weights: Weights, batch = 1, w: JudgeWidths = JUDGE_WIDTHS): Net {
  const net = new Net('toyworld_judge_classifier', 'export', weights);
  const C = CROP;
  const crop: Value = { name: net.input('crop', DataType.FLOAT, ['batch', 4, C, C]), shape: [batch, 4, C, C] };
  const scene: Value = { name: net.input('scene', DataType.FLOAT, ['batch', 5, C, C]), shape: [batch, 5, C, C] };
  const patch: Value = { name: net.input('patch', DataType.FLOAT, ['batch', 4, C, C]), shape: [batch, 4, C, C] };
  const logits = classifierLogits(net, crop, scene, patch, w);
  net.graph.addNode({ opType: 'Identity', inputs: [logits.name], outputs: ['logits'], name: 'logits_node' });
  net.output('logits', ['batch', LOGITS]);
  return net;
}

/** The exported finder: image -> class_map logits [B,11,16,16]. */
export function buildFinderNet(weights: Weights, batch = 1, w: JudgeWidths = JUDGE_WIDTHS): Net {
  const net = new Net('toyworld_judge_finder', 'export', weights);
  const S = IMAGE_SIZE,
    G = FINDER_GRID;
  const image: Value = { name: net.input('image', DataType.FLOAT, ['batch', 3, S, S]), shape: [batch, 3, S, S] };
  const map = finderLogits(net, image, w);
  net.graph.addNode({ opType: 'Identity', inputs: [map.name], outputs: ['class_map'], name: 'class_map_node' });
  net.output('class_map', ['batch', FINDER_CLASSES.length, G, G]);
  return net;
}
