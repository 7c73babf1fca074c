/**
 * Union sampling (METHOD.md "Union sampling"): each training step picks k ~ U{1..N} distinct subjects, the
 * prompt `a photo of <asset_i> and <asset_j> ...` naming them, a horizontal flip with probability p, and
 * M_s = the union of the chosen subjects' masks.
 *
 * Subjects keep the order in which they were drawn (a uniformly random order), as Break-a-Scene's
 * `random.sample` does: every subject appears in every prompt position equally often, so no placeholder is
 * tied to "the first noun". Randomness comes from one `GaussianRng` handed in per step (see trainer.ts:
 * `rng.fork(step-<phase>-<step>)`), drawn in a fixed order: k, then the subjects, then the flip.
 */
import type { GaussianRng } from '@dynasyn/diffusion';
import { flipHorizontal, union } from '@dynasyn/imaging';
import type { Mask, Subject } from '../types.js';

/** The placeholder token of subject `i` (`<asset0>`, `<asset1>`, ...). */
export const placeholderToken = (i: number): string => `<asset${i}>`;

/** One step's draw. */
export interface UnionDraw {
  /** Indices of the chosen subjects, in drawn order (the order they appear in the prompt). */
  subjects: number[];
  /** Whether image and masks are mirrored left-right this step. */
  flip: boolean;
}

/** A drawn step, resolved into prompts and masks. */
export interface UnionSample extends UnionDraw {
  /** c: `a photo of <asset1> and <asset0>`. */
  prompt: string;
  /** c_hat: the same prompt with class words in place of placeholders (`a photo of bowl and panda`). */
  classPrompt: string;
  /** Masks of `subjects` (same order), flipped when `flip`, at image size. */
  masks: Mask[];
  /** M_s: union of `masks`. */
  unionMask: Mask;
}

/**
 * How many subjects a step names (TrainOptions.subjectsPerStep): `union` k ~ U{1..N} (METHOD.md); `one` a
 * single subject per step (the paper's TI/DB "+mask" baselines); `all` every subject every step.
 */
export type SubjectsPerStep = 'union' | 'one' | 'all';

/** Draws k ~ U{1..n} (or 1, or n), k distinct subjects (partial Fisher-Yates, order as drawn) and a flip with probability p. */
export function drawUnion(n: number, rng: GaussianRng, flipProbability: number, subjectsPerStep: SubjectsPerStep = 'union'): UnionDraw {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`union sampling needs at least one subject, got ${n}`);
  if (!(flipProbability >= 0 && flipProbability <= 1)) throw new RangeError(`flipProbability must lie in [0, 1], got ${flipProbability}`);
  // the k word is drawn whatever the mode, so the stream's layout does not depend on the option
  const drawnK = 1 + rng.uniformInt(n);
  const k = subjectsPerStep === 'one' ? 1 : subjectsPerStep === 'all' ? n : drawnK;
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.uniformInt(n - i);
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  // Always draw the flip word, even at p = 0 or 1, so the stream's layout does not depend on the option.
  const u = rng.uniform();
  return { subjects: pool.slice(0, k), flip: u < flipProbability };
}

/** `a photo of A and B and C` for the given words. */
export const unionPrompt = (words: readonly string[]): string => `a photo of ${words.join(' and ')}`;

/**
 * Resolves a draw into the placeholder prompt, the class prompt and the (flipped) masks. `masked` false
 * (TrainOptions.maskedDiffusion): M_s covers the whole image, so L_MD is DreamBooth's plain reconstruction.
 */
export function resolveUnion(draw: UnionDraw, subjects: readonly Subject[], masked = true): UnionSample {
  const chosen = draw.subjects.map((i) => {
    const s = subjects[i];
    if (!s) throw new RangeError(`union draw names subject ${i}, but there are ${subjects.length}`);
    return s;
  });
  const masks = chosen.map((s) => (draw.flip ? flipHorizontal(s.mask) : s.mask));
  return {
    ...draw,
    prompt: unionPrompt(draw.subjects.map(placeholderToken)),
    classPrompt: unionPrompt(chosen.map((s) => s.classWord)),
    masks,
    unionMask: masked ? union(...masks) : { width: masks[0]!.width, height: masks[0]!.height, data: new Uint8Array(masks[0]!.data.length).fill(1) },
  };
}

/** drawUnion + resolveUnion. */
export function sampleUnion(
  subjects: readonly Subject[],
  rng: GaussianRng,
  flipProbability: number,
  how: { subjectsPerStep?: SubjectsPerStep; masked?: boolean } = {},
): UnionSample {
  return resolveUnion(drawUnion(subjects.length, rng, flipProbability, how.subjectsPerStep), subjects, how.masked ?? true);
}
