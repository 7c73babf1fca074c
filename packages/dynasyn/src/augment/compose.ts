/**
 * Composition (METHOD.md augmentation step 4): each subject of the draft is replaced by the original
 * subject cut from the reference image, scaled into the bounding box of its pseudo mask; the draft's
 * subject area the pasted subject does not cover (the holes) is inpainted with the same backbone by masked
 * latent blending at the draft's prompt. Only hole pixels are taken from the inpainting, so the pasted
 * subjects keep their exact pixels; the masks of the composed image are the pasted masks (a subject
 * pasted later hides what it covers of an earlier one).
 */
import { area, boundingBox, dilate, pasteSubject, subtract, union, type Mask } from '@dynasyn/imaging';
import type { DiffusionPipeline, SchedulerKind } from '@dynasyn/diffusion';
import type { RgbImage } from '../types.js';
import { AugmentationError } from './errors.js';

export interface PasteArgs {
  draft: RgbImage;
  /** Pseudo mask of each slot's subject in the draft (draft-sized). */
  draftMasks: readonly Mask[];
  reference: RgbImage;
  /** The same subjects' masks in the reference image (reference-sized), slot order. */
  referenceMasks: readonly Mask[];
  /** Slots in paste order (later ones end on top). Default 0..n-1. */
  order?: readonly number[];
}

export interface Composition {
  image: RgbImage;
  /** Visible pasted subject per slot (draft-sized). */
  masks: Mask[];
  /** Draft subject area not covered by any pasted subject (what gets inpainted). */
  holes: Mask;
}

export async function pasteSubjects(a: PasteArgs): Promise<Composition> {
  const n = a.draftMasks.length;
  if (a.referenceMasks.length !== n) throw new AugmentationError('BAD_ARGUMENT', `${n} draft masks but ${a.referenceMasks.length} reference masks`);
  const order = a.order ?? [...Array(n).keys()];
  if (order.length !== n || new Set(order).size !== n || order.some((k) => !(k >= 0 && k < n))) {
    throw new AugmentationError('BAD_ARGUMENT', `paste order [${order.join(', ')}] is not a permutation of the ${n} slots`);
  }
  let image = a.draft;
  const masks: Mask[] = new Array<Mask>(n);
  for (const k of order) {
    const box = boundingBox(a.draftMasks[k]!);
    if (!box) throw new AugmentationError('BAD_ARGUMENT', `the pseudo mask of slot ${k} is empty: no box to paste the subject into`);
    const pasted = await pasteSubject(image, a.reference, a.referenceMasks[k]!, box, { fit: 'contain' });
    image = pasted.image;
    for (const j of order) if (masks[j]) masks[j] = subtract(masks[j]!, pasted.pastedMask);
    masks[k] = pasted.pastedMask;
  }
  const holes = subtract(union(...a.draftMasks), union(...masks));
  return { image, masks, holes };
}

export interface InpaintHolesOptions {
  /** The draft's prompt (noun phrases). */
  prompt: string;
  steps: number;
  guidance: number;
  seed: number;
  scheduler?: SchedulerKind;
  /** Grow the holes by this many pixels (never into a pasted subject) so seams are repainted too. Default 1. */
  grow?: number;
}

/** Inpaints the holes of a composition with the backbone; pixels outside the holes are kept exactly. */
export async function inpaintHoles(pipeline: DiffusionPipeline, c: Composition, o: InpaintHolesOptions): Promise<Composition> {
  const grown = o.grow === 0 ? c.holes : dilate(c.holes, o.grow ?? 1);
  const holes = subtract(grown, union(...c.masks));
  if (area(holes) === 0) return { ...c, holes };
  const res = await pipeline.inpaint({
    prompt: o.prompt,
    image: c.image,
    mask: holes,
    steps: o.steps,
    guidance: o.guidance,
    seed: o.seed,
    ...(o.scheduler ? { scheduler: o.scheduler } : {}),
  });
  const painted = res.images[0]!;
  const data = Uint8Array.from(c.image.data);
  for (let p = 0; p < holes.data.length; p++) {
    if (holes.data[p]) for (let ch = 0; ch < 3; ch++) data[p * 3 + ch] = painted.data[p * 3 + ch]!;
  }
  return { image: { width: c.image.width, height: c.image.height, data }, masks: c.masks, holes };
}
