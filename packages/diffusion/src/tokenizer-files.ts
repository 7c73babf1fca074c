/**
 * Small but real CLIP-format tokenizer folders for tiny bundles and tests: the 256 byte symbols, their
 * `</w>` forms, merges learned by plain BPE training on a word list, then the start/end tokens, in the
 * order OpenAI's CLIP builds its vocabulary. Words outside the list still tokenize (byte fallback).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiffusionError } from './errors.js';
import {
  bytesToUnicode,
  CLIP_MAX_LENGTH,
  END_OF_TEXT,
  END_OF_WORD,
  START_OF_TEXT,
  normalizePromptText,
  preTokenize,
  type ClipTokenizerFiles,
} from './tokenizer.js';

/**
 * Words the project's prompts use (templates, class words, negative prompts). Every word here becomes a
 * single token of the tiny tokenizer; extend it (spread into a new list) for new templates.
 */
export const TINY_TOKENIZER_WORDS: readonly string[] = [
  // articles, prepositions, glue
  'a',
  'an',
  'the',
  'of',
  'and',
  'with',
  'on',
  'in',
  'at',
  'to',
  'next',
  'near',
  'under',
  'behind',
  'beside',
  'front',
  'top',
  'inside',
  'by',
  'is',
  'are',
  'each',
  'other',
  'together',
  'two',
  'three',
  'its',
  'their',
  'while',
  'from',
  // framing and style
  'photo',
  'picture',
  'image',
  'painting',
  'drawing',
  'sketch',
  'rendering',
  'render',
  'close',
  'up',
  'view',
  'style',
  'oil',
  'watercolor',
  'cartoon',
  'pixel',
  'art',
  'realistic',
  'detailed',
  'high',
  'quality',
  'sharp',
  'focus',
  'studio',
  'lighting',
  'professional',
  'cinematic',
  // negative prompts
  'blurry',
  'low',
  'ugly',
  'bad',
  'deformed',
  'distorted',
  'cropped',
  'out',
  'frame',
  'watermark',
  'text',
  // class words (subjects)
  'panda',
  'bowl',
  'toy',
  'dog',
  'cat',
  'cup',
  'teddy',
  'bear',
  'mug',
  'vase',
  'teapot',
  'plate',
  'bottle',
  'box',
  'bag',
  'backpack',
  'shoe',
  'hat',
  'clock',
  'lamp',
  'book',
  'plant',
  'flower',
  'flowers',
  'pot',
  'candle',
  'basket',
  'ball',
  'car',
  'robot',
  'doll',
  'figurine',
  'sculpture',
  'statue',
  'duck',
  'rabbit',
  'bunny',
  'fox',
  'owl',
  'bird',
  'elephant',
  'lion',
  'monkey',
  'penguin',
  'turtle',
  'horse',
  'sheep',
  'pig',
  'mouse',
  'person',
  'man',
  'woman',
  'child',
  'chair',
  'sofa',
  'bed',
  'table',
  'stuffed',
  'animal',
  'object',
  'subject',
  'belly',
  // colours and attributes
  'red',
  'green',
  'blue',
  'white',
  'black',
  'yellow',
  'brown',
  'orange',
  'pink',
  'purple',
  'gray',
  'small',
  'big',
  'large',
  'little',
  'cute',
  'old',
  'wooden',
  'ceramic',
  'plastic',
  'metal',
  'glass',
  'fluffy',
  'shiny',
  // actions and interactions
  'playing',
  'sitting',
  'standing',
  'lying',
  'floating',
  'running',
  'jumping',
  'walking',
  'swimming',
  'flying',
  'eating',
  'drinking',
  'holding',
  'wearing',
  'hugging',
  'looking',
  'sleeping',
  'dancing',
  'reading',
  'riding',
  'hiding',
  'placed',
  'filled',
  'made',
  // scenes
  'beach',
  'grass',
  'park',
  'garden',
  'forest',
  'snow',
  'mountain',
  'mountains',
  'desert',
  'river',
  'lake',
  'sea',
  'ocean',
  'water',
  'city',
  'street',
  'road',
  'kitchen',
  'room',
  'living',
  'floor',
  'shelf',
  'desk',
  'window',
  'background',
  'sky',
  'sunset',
  'night',
  'day',
  'moon',
  'space',
  'rain',
  'field',
  'wall',
  'house',
  'tree',
  'trees',
  'jungle',
  'cafe',
  'restaurant',
  'library',
  'bathroom',
  'bedroom',
  'stage',
  'bridge',
  'boat',
  'sand',
  'rock',
  'leaves',
  'autumn',
  'winter',
  'summer',
  'spring',
  'paris',
  'tokyo',
  'new',
  'york',
  'times',
  'square',
  'eiffel',
  'tower',
];

export interface TinyTokenizerOptions {
  /** Words whose BPE merges are learned (lower-cased, pre-tokenized like prompts); default TINY_TOKENIZER_WORDS. */
  words?: readonly string[];
  /**
   * A cap on learned merges (default: merge until every word is one token), or an explicit merge list in
   * byte-unicode symbols (`[['p', 'a'], ['pa', 'n'], ...]`) used instead of learning.
   */
  merges?: number | ReadonlyArray<readonly [string, string]>;
  /** Pad token: '!' (id 0) as in SD 2.x (default), or '<|endoftext|>' as in SD 1.x. */
  padToken?: string;
  /** tokenizer_config.json model_max_length; default 77. */
  modelMaxLength?: number;
}

/** Deterministic BPE training: repeatedly merge the most frequent adjacent pair (ties: smallest pair, in code-unit order). */
export function learnMerges(words: readonly string[], maxMerges = Infinity): Array<[string, string]> {
  const byteChar = new Map(bytesToUnicode());
  const counts = new Map<string, number>();
  for (const w of words) {
    for (const pre of preTokenize(normalizePromptText(w))) {
      counts.set(pre, (counts.get(pre) ?? 0) + 1);
    }
  }
  const seqs = [...counts]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([pre, n]) => {
      const sym = Array.from(new TextEncoder().encode(pre), (b) => byteChar.get(b)!);
      sym[sym.length - 1] += END_OF_WORD;
      return { sym, n };
    });
  const merges: Array<[string, string]> = [];
  while (merges.length < maxMerges) {
    const pairs = new Map<string, { a: string; b: string; n: number }>();
    for (const { sym, n } of seqs) {
      for (let i = 0; i + 1 < sym.length; i++) {
        const key = `${sym[i]} ${sym[i + 1]}`;
        const p = pairs.get(key);
        if (p) p.n += n;
        else pairs.set(key, { a: sym[i]!, b: sym[i + 1]!, n });
      }
    }
    let best: { key: string; a: string; b: string; n: number } | undefined;
    for (const [key, p] of pairs) if (!best || p.n > best.n || (p.n === best.n && key < best.key)) best = { key, ...p };
    if (!best) break;
    merges.push([best.a, best.b]);
    for (const s of seqs) {
      const out: string[] = [];
      for (let i = 0; i < s.sym.length;) {
        if (i + 1 < s.sym.length && s.sym[i] === best.a && s.sym[i + 1] === best.b) {
          out.push(best.a + best.b);
          i += 2;
        } else out.push(s.sym[i++]!);
      }
      s.sym = out;
    }
  }
  return merges;
}

/** The contents of a tiny CLIP tokenizer folder, in memory (see writeTinyTokenizer). */
export function tinyTokenizerFiles(options: TinyTokenizerOptions = {}): ClipTokenizerFiles {
  const merges = Array.isArray(options.merges)
    ? (options.merges as ReadonlyArray<readonly [string, string]>)
    : learnMerges(options.words ?? TINY_TOKENIZER_WORDS, (options.merges as number | undefined) ?? Infinity);
  const vocab: Record<string, number> = {};
  let next = 0;
  const add = (tok: string) => {
    if (!Object.hasOwn(vocab, tok)) vocab[tok] = next++;
  };
  const symbols = bytesToUnicode().map(([, c]) => c);
  for (const c of symbols) add(c);
  for (const c of symbols) add(c + END_OF_WORD);
  for (const [a, b] of merges) {
    if (!Object.hasOwn(vocab, a) || !Object.hasOwn(vocab, b)) {
      throw new DiffusionError('BAD_ARGUMENT', `merge ${JSON.stringify(`${a} ${b}`)} uses a symbol no earlier merge or byte produces`);
    }
    add(a + b);
  }
  add(START_OF_TEXT);
  add(END_OF_TEXT);
  const special = (content: string) => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  const padToken = options.padToken ?? '!';
  if (!Object.hasOwn(vocab, padToken)) throw new DiffusionError('BAD_ARGUMENT', `pad token ${JSON.stringify(padToken)} is not in the vocabulary`);
  return {
    vocab,
    merges: ['#version: 0.2', ...merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n',
    specialTokensMap: { bos_token: special(START_OF_TEXT), eos_token: special(END_OF_TEXT), pad_token: padToken, unk_token: special(END_OF_TEXT) },
    tokenizerConfig: {
      add_prefix_space: false,
      bos_token: { __type: 'AddedToken', ...special(START_OF_TEXT) },
      do_lower_case: true,
      eos_token: { __type: 'AddedToken', ...special(END_OF_TEXT) },
      errors: 'replace',
      model_max_length: options.modelMaxLength ?? CLIP_MAX_LENGTH,
      pad_token: padToken,
      tokenizer_class: 'CLIPTokenizer',
      unk_token: { __type: 'AddedToken', ...special(END_OF_TEXT) },
    },
  };
}

/**
 * Writes vocab.json, merges.txt, special_tokens_map.json and tokenizer_config.json into `dir` (created if
 * needed). Returns the base vocabulary size: the token-embedding rows a matching text encoder needs.
 */
export function writeTinyTokenizer(dir: string, options: TinyTokenizerOptions = {}): { vocabSize: number } {
  return writeTokenizerFiles(dir, tinyTokenizerFiles(options));
}

/** Writes a tokenizer folder as transformers' CLIPTokenizer reads it; returns its base vocabulary size. */
export function writeTokenizerFiles(dir: string, files: ClipTokenizerFiles): { vocabSize: number } {
  mkdirSync(dir, { recursive: true });
  const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  writeFileSync(join(dir, 'vocab.json'), json(files.vocab));
  writeFileSync(join(dir, 'merges.txt'), files.merges);
  writeFileSync(join(dir, 'special_tokens_map.json'), json(files.specialTokensMap));
  writeFileSync(join(dir, 'tokenizer_config.json'), json(files.tokenizerConfig));
  return { vocabSize: Object.keys(files.vocab).length };
}
