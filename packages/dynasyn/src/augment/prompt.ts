/**
 * Augmentation prompts: a template with numbered slots `{0}`, `{1}` (positions in its `subjects` list) and
 * the three renderings METHOD.md uses: placeholders (`<asset0>`, what training sees, c_a), class words
 * (c_hat_a) and noun phrases (what the base model draws in the drafts and GSA).
 */
import type { RgbImage, Subject } from '../types.js';
import { AugmentationError } from './errors.js';

export type PromptCategory = 'plain' | 'action' | 'interaction';

export interface AugmentationPrompt {
  /** Text with slots `{k}`: slot k is subject `subjects[k]`. */
  text: string;
  category: PromptCategory;
  /** Indices of the input's subjects, in slot order. */
  subjects: number[];
}

/** Where augmentation prompts and noun phrases come from (built-in templates, or a chat endpoint). */
export interface PromptProvider {
  /** One short noun phrase per subject (`toy panda with white belly`), in subject order. */
  nounPhrases(image: RgbImage, subjects: readonly Subject[]): Promise<string[]>;
  /**
   * `count` distinct prompts over the subjects whose phrases are given (index = subject index), balanced:
   * each subject appears about equally often, interactions cover every pair. May return fewer when the
   * source cannot give more distinct ones.
   */
  prompts(subjectPhrases: readonly string[], count: number): Promise<AugmentationPrompt[]>;
}

/** The placeholder token of subject i (METHOD.md: `<asset0>..<assetN-1>`). */
export const placeholderToken = (i: number): string => `<asset${i}>`;

const SLOT = /\{(\d+)\}/g;

/** Replaces each slot `{k}` by `words[k]`; a slot without a word is an error naming the template. */
export function renderPrompt(template: string, words: readonly string[]): string {
  return template.replace(SLOT, (_, k: string) => {
    const w = words[Number(k)];
    if (w === undefined)
      throw new AugmentationError('BAD_ARGUMENT', `prompt template ${JSON.stringify(template)} uses slot {${k}} but only ${words.length} word(s) were given`);
    return w;
  });
}

/** Slots used by a template, in order of first appearance. */
export function slotsOf(template: string): number[] {
  const seen: number[] = [];
  for (const m of template.matchAll(SLOT)) {
    const k = Number(m[1]);
    if (!seen.includes(k)) seen.push(k);
  }
  return seen;
}

/** The three renderings of a prompt: placeholders, class words, noun phrases. */
export function renderings(
  p: AugmentationPrompt,
  subjects: readonly Subject[],
  placeholders?: readonly string[],
): { prompt: string; classPrompt: string; nounPrompt: string } {
  const pick = <T>(f: (s: Subject, i: number) => T): T[] =>
    p.subjects.map((i) => {
      const s = subjects[i];
      if (!s) throw new AugmentationError('BAD_ARGUMENT', `prompt ${JSON.stringify(p.text)} names subject ${i}; there are ${subjects.length}`);
      return f(s, i);
    });
  return {
    prompt: renderPrompt(
      p.text,
      pick((_, i) => placeholders?.[i] ?? placeholderToken(i)),
    ),
    classPrompt: renderPrompt(
      p.text,
      pick((s) => s.classWord),
    ),
    nounPrompt: renderPrompt(
      p.text,
      pick((s) => s.nounPhrase ?? s.classWord),
    ),
  };
}
