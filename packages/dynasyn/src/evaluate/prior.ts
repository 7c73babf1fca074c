/**
 * The class-prior set of the DreamBooth baseline: base-model images of the class prompts (`a photo of cat`,
 * `a photo of dog`, `a photo of cat and dog`, in turn), saved in the augmented-set layout with no placeholder
 * and no subject, so training adds DreamBooth's prior-preservation term (TrainOptions.priorPreservation).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DiffusionPipeline } from '@dynasyn/diffusion';
import { saveAugmented } from '../augment/storage.js';
import { runtimeOf } from '../pipeline/run.js';
import { unionPrompt } from '../train/union.js';
import type { AugmentedExample, DynasynOptions } from '../types.js';

/** The class prompts of the prior set, in the order images cycle through them. */
export function classPriorPrompts(classWords: readonly string[]): string[] {
  const singles = [...new Set(classWords)].map((w) => unionPrompt([w]));
  return classWords.length > 1 ? [...singles, unionPrompt(classWords)] : singles;
}

/** Writes the prior set to `dir` (`count` images, draft steps and guidance of the options), unless it is there. */
export async function writeClassPriorSet(backbone: string, classWords: readonly string[], options: DynasynOptions, dir: string): Promise<string> {
  if (existsSync(join(dir, 'augmented.json'))) return dir;
  const prompts = classPriorPrompts(classWords);
  const pipeline = await DiffusionPipeline.create(backbone, runtimeOf(options));
  const examples: AugmentedExample[] = [];
  try {
    for (let k = 0; k < options.augmentation.count; k++) {
      const prompt = prompts[k % prompts.length]!;
      const r = await pipeline.textToImage({
        prompt,
        steps: options.augmentation.draftSteps,
        guidance: options.augmentation.draftGuidance,
        scheduler: 'ddim',
        seed: (options.seed * 1000 + k) % 2 ** 32,
      });
      examples.push({ image: r.images[0]!, prompt, classPrompt: prompt, nounPrompt: prompt, subjects: [], masks: [], category: 'plain' });
    }
  } finally {
    await pipeline.release();
  }
  await saveAugmented(dir, examples);
  return dir;
}
