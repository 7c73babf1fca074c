/**
 * Token positions the losses read attention at: the placeholder `<asset_i>` in a prompt c (all its vectors'
 * positions when it has several: their columns are summed), and the FIRST sub-token of subject i's class word
 * in the class prompt c_hat (METHOD.md "Losses", L_ICA).
 */
import type { ClipTokenizer } from '@dynasyn/diffusion';
import { TrainingError } from './errors.js';

const PLACEHOLDER = /(<asset\d+>)/u;

/** A prompt with placeholders, tokenized, plus its class prompt and where each subject sits in both. */
export interface PromptTokens {
  /** Padded ids of c [maxTokens]. */
  ids: Int32Array;
  /** Padded ids of c_hat [maxTokens]. */
  classIds: Int32Array;
  classPrompt: string;
  /** Subject index -> positions of its placeholder's vectors in `ids` (first occurrence; one position for a one-vector placeholder). */
  placeholderAt: Map<number, number[]>;
  /** Subject index -> position of the first sub-token of its class word in `classIds`. */
  classWordAt: Map<number, number>;
}

/**
 * Tokenizes `prompt` (placeholders `<asset_i>`) and builds c_hat by putting `classWords[i]` in place of each
 * `<asset_i>`. The class word's position is the number of tokens of the c_hat text before it (+1 for the
 * start token); CLIP pre-tokenizes on word boundaries, so that prefix tokenizes as in the whole prompt,
 * and the id found there is checked to be the class word's first sub-token.
 */
export function promptTokens(tokenizer: ClipTokenizer, prompt: string, classWords: readonly string[], maxTokens: number): PromptTokens {
  const pieces = prompt.split(PLACEHOLDER);
  let classPrompt = '';
  const classWordAt = new Map<number, number>();
  for (const [k, piece] of pieces.entries()) {
    const j = k % 2 === 1 ? Number(piece.slice(6, -1)) : -1;
    const word = classWords[j];
    if (word === undefined) {
      if (k % 2 === 1) throw new TrainingError('BAD_PROMPT', `prompt ${JSON.stringify(prompt)} names ${piece}, but there are ${classWords.length} subjects`);
      classPrompt += piece;
      continue;
    }
    if (!classWordAt.has(j)) classWordAt.set(j, 1 + tokenizer.tokenize(classPrompt).length);
    classPrompt += word;
  }
  const ids = tokenizer.encodePadded(prompt, maxTokens);
  const classIds = tokenizer.encodePadded(classPrompt, maxTokens);
  const placeholderAt = new Map<number, number[]>();
  for (const j of classWordAt.keys()) {
    const vectors = tokenizer.idsOf(`<asset${j}>`);
    const at = vectors === undefined ? -1 : ids.indexOf(vectors[0]!);
    // every vector must fit: truncation may cut a placeholder's last vectors off
    if (at < 0 || vectors!.some((id, k) => ids[at + k] !== id))
      throw new TrainingError(
        'BAD_PROMPT',
        `placeholder <asset${j}> of prompt ${JSON.stringify(prompt)} is not among its first ${maxTokens - 2} tokens${vectors && vectors.length > 1 ? ` (with its ${vectors.length} vectors)` : ''} (or not added to the tokenizer)`,
      );
    placeholderAt.set(
      j,
      vectors!.map((_, k) => at + k),
    );
    const pos = classWordAt.get(j)!;
    if (pos >= maxTokens - 1 || classIds[pos] !== tokenizer.firstSubTokenId(classWords[j]!)) {
      throw new TrainingError(
        'BAD_PROMPT',
        `class word ${JSON.stringify(classWords[j])} of class prompt ${JSON.stringify(classPrompt)} is not at token ${pos} (prompt too long, or the word merges with its neighbours)`,
      );
    }
  }
  return { ids, classIds, classPrompt, placeholderAt, classWordAt };
}
