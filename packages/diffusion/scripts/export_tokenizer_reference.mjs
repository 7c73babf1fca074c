/**
 * Writes fixtures/tokenizer/reference.json: token ids that Hugging Face's own JS tokenizer
 * (@huggingface/tokenizers, the engine of transformers.js) gives for a set of prompts on a small CLIP-format
 * vocabulary, configured as CLIPTokenizerFast's tokenizer.json (NFC, whitespace collapse, lower-case, the
 * CLIP split pattern, byte-level, BPE with `</w>`, start/end tokens) plus two added placeholder tokens.
 * tokenizer.test.ts checks ClipTokenizer against it. The package is not a dependency; to regenerate:
 *   cd $(mktemp -d) && npm init -y && npm install @huggingface/tokenizers@0.2.0
 *   (build packages/diffusion) && NODE_PATH=$PWD/node_modules node <repo>/packages/diffusion/scripts/export_tokenizer_reference.mjs
 * (or run it from a folder whose node_modules has the package).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(process.cwd(), 'noop.js'));
const hfModule = await import(pathToFileURL(require.resolve('@huggingface/tokenizers')).href);
const Tokenizer = hfModule.Tokenizer ?? hfModule.default.Tokenizer; // the CommonJS build when resolved by require
const { tinyTokenizerFiles, TINY_TOKENIZER_WORDS } = await import(pathToFileURL(join(here, '..', 'dist', 'tokenizer-files.js')).href);

// A frozen vocabulary: the fixture stores it, so later changes to the word list or the learner do not move it.
const files = tinyTokenizerFiles({ words: [...TINY_TOKENIZER_WORDS.slice(0, 150), 'café', "don't", 'hello world 123'], merges: 600 });
const vocabSize = Object.keys(files.vocab).length;
const bos = files.vocab['<|startoftext|>'];
const eos = files.vocab['<|endoftext|>'];
const added = ['<asset0>', '<asset1>'];
const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true });
const tokenizerJson = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [
    special(bos, '<|startoftext|>'),
    special(eos, '<|endoftext|>'),
    // CLIPTokenizer (the slow one diffusers' textual inversion uses) matches added tokens case-sensitively.
    ...added.map((content, i) => ({ ...special(vocabSize + i, content), normalized: false, special: false })),
  ],
  normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
  pre_tokenizer: {
    type: 'Sequence',
    pretokenizers: [
      {
        type: 'Split',
        pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" },
        behavior: 'Removed',
        invert: true,
      },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  },
  post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', eos], cls: ['<|startoftext|>', bos], trim_offsets: false, add_prefix_space: false },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: 'BPE',
    dropout: null,
    unk_token: '<|endoftext|>',
    continuing_subword_prefix: '',
    end_of_word_suffix: '</w>',
    fuse_unk: false,
    byte_fallback: false,
    vocab: files.vocab,
    merges: files.merges.split('\n').slice(1).filter(Boolean),
  },
};
const hf = new Tokenizer(tokenizerJson, files.tokenizerConfig);
const prompts = [
  'a photo of a panda',
  'A Photo of  <asset0> and <asset1> on the beach',
  '<asset0>, sitting next to <asset1>!',
  'zebras are eating strawberries',
  "don't stop: it's 2024... 3.14",
  'Café crème brûlée à la carte',
  '🐼🐼 emoji 👍🏽 family 👨‍👩‍👧',
  'Ünïcödé ΕΛΛΗΝΙΚΑ русский 中文字符 日本語',
  'tab\tnew\nline   spaces',
  'teddy bear playing with a dog, oil painting, highly detailed, 8k',
  "the cat's toy's bowl",
  '--- ### $$$ ((())) ',
  'x'.repeat(60),
  'abcdefghijklmnopqrstuvwxyz',
  'sittingplayingbeachgrass',
  'pandapanda panda-panda panda_panda',
  '<asset0><asset1>',
  'a<asset0>b',
  '<ASSET0> is not a placeholder',
];
const out = {
  source: '@huggingface/tokenizers 0.2.0 with a CLIPTokenizerFast-style tokenizer.json (scripts/export_tokenizer_reference.mjs)',
  vocab: files.vocab,
  merges: files.merges,
  specialTokensMap: files.specialTokensMap,
  tokenizerConfig: files.tokenizerConfig,
  addedTokens: added,
  cases: prompts.map((text) => ({ text, ids: hf.encode(text).ids, tokens: hf.tokenize(text) })),
};
mkdirSync(join(here, '..', 'fixtures', 'tokenizer'), { recursive: true });
writeFileSync(join(here, '..', 'fixtures', 'tokenizer', 'reference.json'), JSON.stringify(out) + '\n');
console.log(`wrote ${out.cases.length} cases, vocabulary ${vocabSize}`);
