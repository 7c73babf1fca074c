/** A synthetic two-subject input for tests of the trainer (not part of the build). */
import type { ClipTokenizer, ModelBundle } from '@dynasyn/diffusion';
import type { BatchSetup } from '../train/batch.js';
import { attentionGrid, encodeLatents, trainingScheduler } from '../train/setup.js';
import type { AugmentedExample, PersonalizationInput, RgbImage } from '../types.js';

/** 128x128: a red square (subject 0, top left) and a blue disc (subject 1, bottom right) on grey. */
export function twoSubjectInput(size = 128): PersonalizationInput {
  const image: RgbImage = { width: size, height: size, data: new Uint8Array(size * size * 3).fill(128) };
  const m0 = new Uint8Array(size * size),
    m1 = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      if (x >= size * 0.1 && x < size * 0.45 && y >= size * 0.15 && y < size * 0.5) {
        m0[p] = 1;
        image.data.set([220, 40, 40], p * 3);
      } else if ((x - size * 0.7) ** 2 + (y - size * 0.7) ** 2 < (size * 0.2) ** 2) {
        m1[p] = 1;
        image.data.set([40, 60, 220], p * 3);
      }
    }
  }
  return {
    image,
    subjects: [
      { mask: { width: size, height: size, data: m0 }, classWord: 'panda' },
      { mask: { width: size, height: size, data: m1 }, classWord: 'bowl' },
    ],
  };
}

/**
 * The batch setup of a training step on `input` (two subjects, 77 tokens, the paper's lambdas unless `over`
 * says otherwise), as the trainer builds it, for tests that build batches by hand. `over` sets the rest: the
 * graph's input types, whether its frozen branch computes the class maps, other lambdas.
 */
export async function twoSubjectBatchSetup(
  bundle: ModelBundle,
  input: PersonalizationInput,
  tokenizer: ClipTokenizer,
  over: Pick<BatchSetup, 'frozenInGraph' | 'idsType' | 'timestepType' | 'latentType'> & Partial<BatchSetup>,
  augmented: readonly AugmentedExample[] = [],
): Promise<BatchSetup> {
  return {
    subjects: input.subjects,
    tokenizer,
    scheduler: trainingScheduler(bundle),
    grid: attentionGrid(bundle, 4),
    slots: 2,
    maxTokens: 77,
    ...(await encodeLatents(bundle, input, augmented, {})),
    lambdas: { md: 1, m2a: 1e-2, ica: 5e-3, aug: augmented.length ? 1e-4 : 0 },
    flipProbability: 0.5,
    ...over,
  };
}
