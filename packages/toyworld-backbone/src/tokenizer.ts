/**
 * The backbone's tokenizer: CLIP's byte-level BPE (the format the product's ClipTokenizer reads) with merges
 * learned from the world's captions by the project's deterministic BPE learner (diffusion's learnMerges,
 * frequency-weighted, ties broken by code-unit order). Merges run until every caption word is one token, so
 * "rabbit" or "stripes" is a single embedding row, as common words are in CLIP; the product's own prompt
 * words (TINY_TOKENIZER_WORDS: "a photo of ...") are learned too, so its templates tokenize the same way.
 */
import { learnMerges, normalizePromptText, preTokenize, TINY_TOKENIZER_WORDS, tinyTokenizerFiles, type ClipTokenizerFiles } from '@dynasyn/diffusion';

/** Every pre-tokenized word of `captions`, once per occurrence (BPE counts pair frequencies over them). */
export function captionWords(captions: Iterable<string>): string[] {
  const words: string[] = [];
  for (const c of captions) words.push(...preTokenize(normalizePromptText(c)));
  return words;
}

/** Tokenizer files learned from `captions` (plus the product's prompt words); deterministic in its input. */
export function learnCaptionTokenizer(captions: Iterable<string>): ClipTokenizerFiles {
  const merges = learnMerges([...captionWords(captions), ...TINY_TOKENIZER_WORDS]);
  return tinyTokenizerFiles({ merges });
}

/** Rows of the token embedding a tokenizer needs: its base vocabulary (bytes, their `</w>` forms, merges, two specials). */
export const vocabSize = (files: ClipTokenizerFiles): number => Object.keys(files.vocab).length;
