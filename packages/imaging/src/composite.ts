import { ImagingError } from './errors.js';
import { crop, resizeRaster, type ResizeOptions } from './geometry.js';
import { boundingBox } from './mask.js';
import { assertMask, assertPositiveSize, assertRgb, assertSameSize, channelsOf, type Box, type Mask, type RgbaImage, type RgbImage } from './types.js';

/**
 * `bottom` with `top` laid over it: out = (1 - a) * bottom + a * top, per pixel. The opacity `a` is, in order:
 * the given mask (0/1), the given float map (values in [0,1], clamped), or top's own alpha when it is RGBA.
 */
export function alphaComposite(bottom: RgbImage, top: RgbImage | RgbaImage, alpha?: Mask | Float32Array): RgbImage {
  assertRgb(bottom, 'bottom image');
  assertSameSize(bottom, top, 'alphaComposite');
  const tc = channelsOf(top, 'top image');
  const n = bottom.width * bottom.height;
  let a: (i: number) => number;
  if (alpha instanceof Float32Array) {
    if (alpha.length !== n) throw new ImagingError('SIZE_MISMATCH', `alpha has ${alpha.length} values, images have ${n} pixels`);
    a = (i) => Math.min(1, Math.max(0, alpha[i]!));
  } else if (alpha) {
    assertMask(alpha, 'alpha mask');
    assertSameSize(bottom, alpha, 'alphaComposite mask');
    a = (i) => alpha.data[i]!;
  } else if (tc === 4) {
    a = (i) => top.data[i * 4 + 3]! / 255;
  } else {
    throw new ImagingError('BAD_ARGUMENT', 'alphaComposite needs an alpha (mask or map) or an RGBA top image');
  }
  if (tc !== 3 && tc !== 4) throw new ImagingError('BAD_ARGUMENT', `top image must be RGB or RGBA, has ${tc} channels`);
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const t = a(i);
    for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.round((1 - t) * bottom.data[i * 3 + k]! + t * top.data[i * tc + k]!);
  }
  return { width: bottom.width, height: bottom.height, data: out };
}

/** Linear mix of two same-size images: (1 - t) * a + t * b. */
export function blend(a: RgbImage, b: RgbImage, t: number): RgbImage {
  assertRgb(a);
  assertRgb(b);
  assertSameSize(a, b, 'blend');
  if (!(t >= 0 && t <= 1)) throw new ImagingError('BAD_ARGUMENT', `blend weight must be in [0,1], got ${t}`);
  return { width: a.width, height: a.height, data: a.data.map((v, i) => Math.round((1 - t) * v + t * b.data[i]!)) };
}

export interface PasteOptions extends ResizeOptions {
  /** 'contain' (default): keep the subject's aspect, centred in the box; 'fill': stretch to the box. */
  fit?: 'contain' | 'fill';
}

export interface Pasted {
  image: RgbImage;
  /** Where the subject now is, target-sized. */
  pastedMask: Mask;
  /** The rectangle the subject's bounding box was scaled into (may extend past the target; it is clipped). */
  placedBox: Box;
}

/**
 * Cuts the subject out of `source` (its mask's bounding box), scales it into `targetBox` of `target`, and
 * composites it there. Subject and mask are resampled together as RGBA (premultiplied, so the source's
 * background never bleeds in) and the resampled mask is a soft alpha, so edges are not jagged; `pastedMask`
 * is that alpha at >= 0.5.
 */
export async function pasteSubject(target: RgbImage, source: RgbImage, sourceMask: Mask, targetBox: Box, opts: PasteOptions = {}): Promise<Pasted> {
  assertRgb(target, 'target');
  assertRgb(source, 'source');
  assertMask(sourceMask, 'source mask');
  assertSameSize(source, sourceMask, 'source and its mask');
  assertPositiveSize(targetBox.width, targetBox.height, 'target box');
  const bb = boundingBox(sourceMask);
  if (!bb) throw new ImagingError('EMPTY_MASK', 'source mask has no set pixel: nothing to paste');
  let placed: Box = { ...targetBox };
  if ((opts.fit ?? 'contain') === 'contain') {
    const s = Math.min(targetBox.width / bb.width, targetBox.height / bb.height);
    const w = Math.max(1, Math.round(bb.width * s)),
      h = Math.max(1, Math.round(bb.height * s));
    placed = { x: targetBox.x + Math.floor((targetBox.width - w) / 2), y: targetBox.y + Math.floor((targetBox.height - h) / 2), width: w, height: h };
  }
  const cut = crop(source, bb),
    cutMask = crop(sourceMask, bb);
  const rgba = new Uint8Array(bb.width * bb.height * 4);
  for (let i = 0; i < cutMask.data.length; i++) {
    rgba.set(cut.data.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = cutMask.data[i] ? 255 : 0;
  }
  const patch = await resizeRaster({ width: bb.width, height: bb.height, data: rgba }, placed.width, placed.height, opts);

  const out = Uint8Array.from(target.data);
  const pasted = new Uint8Array(target.width * target.height);
  for (let py = 0; py < placed.height; py++) {
    const ty = placed.y + py;
    if (ty < 0 || ty >= target.height) continue;
    for (let px = 0; px < placed.width; px++) {
      const tx = placed.x + px;
      if (tx < 0 || tx >= target.width) continue;
      const p = py * placed.width + px;
      const a = patch.data[p * 4 + 3]! / 255;
      if (a <= 0) continue;
      const t = ty * target.width + tx;
      for (let k = 0; k < 3; k++) out[t * 3 + k] = Math.round((1 - a) * out[t * 3 + k]! + a * patch.data[p * 4 + k]!);
      if (a >= 0.5) pasted[t] = 1;
    }
  }
  return {
    image: { width: target.width, height: target.height, data: out },
    pastedMask: { width: target.width, height: target.height, data: pasted },
    placedBox: placed,
  };
}
