/**
 * Pseudo masks of a draft's subjects (METHOD.md augmentation step 3). Default: the cross-attention maps of
 * each subject's noun-phrase tokens, averaged over the draft's denoising steps, normalised by their max,
 * upsampled bilinearly to the image, thresholded, made exclusive (a pixel goes to the subject that attends
 * to it most) and cleaned (largest component, holes filled, a small dilation). A SAM ONNX segmenter is an
 * interface here; it is not implemented yet.
 */
import { binarize, dilate, fillHoles, keepLargestComponent, resizeMap, type Mask } from '@dynasyn/imaging';
import type { ClipTokenizer } from '@dynasyn/diffusion';
import { AugmentationError } from './errors.js';

export interface AttentionMaskOptions {
  /** Fraction of each map's max that counts as inside (METHOD.md leaves it open; 0.5 default), or Otsu's threshold. */
  threshold?: number | 'otsu';
  /** Give a pixel claimed by several subjects to the one with the highest normalised attention. Default true. */
  exclusive?: boolean;
  /** Dilation radius in pixels after cleaning; default image side / 64 (2 px at 128, 8 at 512). */
  dilation?: number;
}

/**
 * Token positions (in the padded ids: start token at 0) of each slot's words in `template` rendered with
 * `words`: the tokens of the text before the slot are counted, then those of the text through the word, so
 * a slot used twice gets both spans. Positions past the truncation are dropped.
 */
export function slotTokenPositions(tokenizer: ClipTokenizer, template: string, words: readonly string[], maxTokens = 77): number[][] {
  const positions: number[][] = words.map(() => []);
  let rendered = '';
  let last = 0;
  for (const m of template.matchAll(/\{(\d+)\}/g)) {
    const k = Number(m[1]);
    const word = words[k];
    if (word === undefined) throw new AugmentationError('BAD_ARGUMENT', `template ${JSON.stringify(template)} uses slot {${k}} without a word`);
    rendered += template.slice(last, m.index);
    const before = tokenizer.tokenize(rendered).length;
    rendered += word;
    const through = tokenizer.tokenize(rendered).length;
    for (let t = before; t < through; t++) if (t + 1 < maxTokens - 1) positions[k]!.push(t + 1);
    last = m.index! + m[0].length;
  }
  return positions;
}

/** Mean over `tokens` of the columns of probs [cells, keys] -> [cells]. */
export function tokenMap(probs: Float32Array, cells: number, keys: number, tokens: readonly number[]): Float32Array {
  const out = new Float32Array(cells);
  if (!tokens.length) return out;
  for (let c = 0; c < cells; c++) {
    let s = 0;
    for (const t of tokens) s += probs[c * keys + t]!;
    out[c] = s / tokens.length;
  }
  return out;
}

/** Otsu's threshold of values in [0, 1] (256 bins): the split maximising between-class variance. */
export function otsuThreshold(values: ArrayLike<number>): number {
  const bins = new Float64Array(256);
  for (let i = 0; i < values.length; i++) bins[Math.min(255, Math.max(0, Math.floor(values[i]! * 256)))]!++;
  const total = values.length;
  let sumAll = 0;
  for (let b = 0; b < 256; b++) sumAll += b * bins[b]!;
  let wB = 0,
    sumB = 0,
    best = 0,
    bestT = 128;
  for (let b = 0; b < 256; b++) {
    wB += bins[b]!;
    if (wB === 0) continue;
    const wF = total - wB;
    if (wF === 0) break;
    sumB += b * bins[b]!;
    const mB = sumB / wB,
      mF = (sumAll - sumB) / wF;
    const between = wB * wF * (mB - mF) ** 2;
    if (between > best) {
      best = between;
      bestT = b + 1;
    }
  }
  return bestT / 256;
}

/**
 * Binary, image-sized masks from per-subject attention maps [h*w] (one per subject, any scale). Each mask
 * is non-empty: its max cell is always inside, and a subject that exclusivity would erase keeps its own
 * thresholded region instead.
 */
export function attentionMasks(maps: readonly Float32Array[], h: number, w: number, width: number, height: number, options: AttentionMaskOptions = {}): Mask[] {
  const threshold = options.threshold ?? 0.5;
  if (typeof threshold === 'number' && !(threshold > 0 && threshold <= 1))
    throw new AugmentationError('BAD_ARGUMENT', `pseudo-mask threshold must be in (0, 1], got ${threshold}`);
  const up = maps.map((m, i) => {
    if (m.length !== h * w) throw new AugmentationError('BAD_ARGUMENT', `attention map ${i} has ${m.length} cells; the grid is ${h}x${w}`);
    let max = 0;
    for (const v of m) max = Math.max(max, v);
    const norm = max > 0 ? m.map((v) => v / max) : m.map(() => 1);
    const img = resizeMap(norm, w, h, width, height);
    let top = 0;
    for (const v of img) top = Math.max(top, v);
    // bilinear upsampling can lower the peak: renormalise so the threshold is relative to the image's max
    return top > 0 ? img.map((v) => v / top) : img.map(() => 1);
  });
  const raw = up.map((m) => binarize(m, width, height, typeof threshold === 'number' ? threshold : otsuThreshold(m)));
  const exclusive = options.exclusive ?? true;
  const radius = options.dilation ?? Math.max(1, Math.round(Math.min(width, height) / 64));
  return raw.map((mask, i) => {
    let m = mask;
    if (exclusive && up.length > 1) {
      // ties go to the lower subject index, so no pixel is claimed twice
      const data = mask.data.map((v, p) => (v && up.every((o, j) => j === i || (j < i ? o[p]! < up[i]![p]! : o[p]! <= up[i]![p]!)) ? 1 : 0));
      if (data.some((v) => v)) m = { width, height, data };
    }
    const cleaned = fillHoles(keepLargestComponent(m));
    return radius > 0 ? dilate(cleaned, radius) : cleaned;
  });
}

/** A zero-shot segmenter for pseudo masks (SAM as ONNX when configured): one mask per subject phrase. */
export interface SubjectSegmenter {
  segment(image: { width: number; height: number; data: Uint8Array }, phrases: readonly string[], hints?: readonly Mask[]): Promise<Mask[]>;
}

/** The SAM segmenter for a model folder: a clear error until SAM ONNX support lands. */
export function createSamSegmenter(modelDir: string | undefined): SubjectSegmenter {
  if (!modelDir)
    throw new AugmentationError(
      'NOT_CONFIGURED',
      'pseudo masks from SAM need pseudoMasks.modelDir (a folder with the SAM ONNX encoder and decoder); use { kind: "attention" } otherwise',
    );
  throw new AugmentationError('UNSUPPORTED', `SAM pseudo masks (${modelDir}) are not implemented yet; use { kind: "attention", threshold: 0.5 }`);
}
