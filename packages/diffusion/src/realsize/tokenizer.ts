/**
 * A synthetic CLIP tokenizer with the real one's size: 49408 tokens (256 byte symbols, their `</w>` forms,
 * 48894 merges, `<|startoftext|>` 49406, `<|endoftext|>` 49407), so that the token embedding, the ids and
 * the tokenizer's cost are those of SD 2.1. There is no CLIP vocabulary on this machine, so the merges are
 * made: first those BPE training learns on the project's prompt words and some common English nouns (each
 * becomes one token, as in CLIP), then every letter/digit pair and triple, with and without `</w>`, until
 * the vocabulary is full. Merges ranked after the learned ones never change how a learned word splits, and
 * any other word still tokenizes (into 1-3 character pieces, or bytes).
 */
import { DiffusionError } from '../errors.js';
import { learnMerges, tinyTokenizerFiles, TINY_TOKENIZER_WORDS, writeTokenizerFiles } from '../tokenizer-files.js';
import { END_OF_WORD, type ClipTokenizerFiles } from '../tokenizer.js';
import { CLIP_VOCAB_SIZE } from './config.js';

/** Common English nouns and words (COCO's classes among them) that become single tokens besides TINY_TOKENIZER_WORDS. */
const COMMON_WORDS: readonly string[] = [
  'bicycle',
  'motorcycle',
  'airplane',
  'bus',
  'train',
  'truck',
  'traffic',
  'light',
  'fire',
  'hydrant',
  'stop',
  'sign',
  'parking',
  'meter',
  'bench',
  'cow',
  'zebra',
  'giraffe',
  'umbrella',
  'handbag',
  'tie',
  'suitcase',
  'frisbee',
  'skis',
  'snowboard',
  'sports',
  'kite',
  'baseball',
  'bat',
  'glove',
  'skateboard',
  'surfboard',
  'tennis',
  'racket',
  'wine',
  'fork',
  'knife',
  'spoon',
  'banana',
  'apple',
  'sandwich',
  'broccoli',
  'carrot',
  'hot',
  'pizza',
  'donut',
  'cake',
  'couch',
  'potted',
  'dining',
  'toilet',
  'tv',
  'laptop',
  'remote',
  'keyboard',
  'cell',
  'phone',
  'microwave',
  'oven',
  'toaster',
  'sink',
  'refrigerator',
  'scissors',
  'hair',
  'drier',
  'toothbrush',
  'guitar',
  'piano',
  'violin',
  'camera',
  'sunglasses',
  'jacket',
  'dress',
  'shirt',
  'boots',
  'sneaker',
  'necklace',
  'ring',
  'watch',
  'pillow',
  'blanket',
  'cactus',
  'tulip',
  'rose',
  'sunflower',
  'tiger',
  'wolf',
  'deer',
  'squirrel',
  'hamster',
  'frog',
  'butterfly',
  'bee',
  'dinosaur',
  'dragon',
  'unicorn',
  'castle',
  'village',
  'island',
  'volcano',
  'waterfall',
  'canyon',
  'glacier',
  'cave',
  'astronaut',
  'wizard',
  'knight',
  'princess',
  'chef',
  'doctor',
  'painter',
  'photograph',
  'portrait',
  'landscape',
  'illustration',
  'anime',
  'digital',
  'concept',
  'trending',
  'artstation',
  'unreal',
  'engine',
  'octane',
  'bokeh',
  'golden',
  'hour',
  'soft',
  'dramatic',
  'vibrant',
  'colorful',
  'beautiful',
  'very',
  'highly',
  'masterpiece',
  'best',
  'resolution',
  'ultra',
  'morning',
  'evening',
  'foggy',
  'sunny',
  'cloudy',
  'snowy',
  'rainy',
  'underwater',
  'wearing',
];

/** The files of a tokenizer with exactly `vocabSize` tokens (default CLIP's 49408); deterministic. */
export function clipSizedTokenizerFiles(vocabSize = CLIP_VOCAB_SIZE): ClipTokenizerFiles {
  const specials = 2,
    bytes = 512;
  const wanted = vocabSize - bytes - specials; // tokens the merges must make
  const learned = learnMerges([...TINY_TOKENIZER_WORDS, ...COMMON_WORDS]);
  const made = new Set<string>();
  const merges: Array<[string, string]> = [];
  const push = (a: string, b: string): void => {
    if (made.size >= wanted || made.has(a + b)) return; // two merges may spell the same token: it counts once
    made.add(a + b);
    merges.push([a, b]);
  };
  for (const [a, b] of learned) push(a, b);
  if (made.size >= wanted)
    throw new DiffusionError('BAD_ARGUMENT', `a ${vocabSize}-token vocabulary cannot hold the ${made.size} tokens the prompt words need`);
  const symbols = [...'abcdefghijklmnopqrstuvwxyz0123456789'];
  for (const x of symbols)
    for (const y of symbols) {
      push(x, y);
      push(x, y + END_OF_WORD);
    }
  for (const x of symbols)
    for (const y of symbols)
      for (const z of symbols) {
        push(x + y, z);
        push(x + y, z + END_OF_WORD);
      }
  if (made.size < wanted) throw new DiffusionError('BAD_ARGUMENT', `cannot make ${wanted} merges for a ${vocabSize}-token vocabulary (made ${made.size})`);
  return tinyTokenizerFiles({ merges });
}

/** Writes the tokenizer folder (vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json). */
export function writeClipSizedTokenizer(dir: string, vocabSize = CLIP_VOCAB_SIZE): { vocabSize: number } {
  return writeTokenizerFiles(dir, clipSizedTokenizerFiles(vocabSize));
}
