import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffusionError } from './errors.js';
import { bytesToUnicode, ClipTokenizer, normalizePromptText } from './tokenizer.js';
import { TINY_TOKENIZER_WORDS, learnMerges, tinyTokenizerFiles, writeTinyTokenizer } from './tokenizer-files.js';

// Hand-built vocabulary in CLIP's layout: ids 0..255 byte symbols, 256..511 their `</w>` forms, then one
// id per merge, then start/end. Byte symbol ids follow bytes_to_unicode's order: '!'..'~' are 0..93.
const charId = (c: string) => c.charCodeAt(0) - 0x21;
const wordEndId = (c: string) => 256 + charId(c);
const handMerges: Array<[string, string]> = [
  ['p', 'a'], // 512 'pa'
  ['pa', 'n'], // 513 'pan'
  ['d', 'a</w>'], // 514 'da</w>'
  ['o', 'f</w>'], // 515 'of</w>'
];
const BOS = 516;
const EOS = 517;
const hand = () => new ClipTokenizer(tinyTokenizerFiles({ merges: handMerges }));

describe('bytesToUnicode', () => {
  it('is a bijection of the 256 bytes onto printable characters, printable ASCII mapping to itself', () => {
    const m = bytesToUnicode();
    expect(m).toHaveLength(256);
    expect(new Set(m.map(([b]) => b)).size).toBe(256);
    expect(new Set(m.map(([, c]) => c)).size).toBe(256);
    expect(m[0]).toEqual([0x21, '!']);
    expect(m.find(([b]) => b === 0x20)?.[1]).toBe('\u0120'); // GPT-2's famous 'Ġ' for space
    for (const [b, c] of m) if (b >= 0x21 && b <= 0x7e) expect(c).toBe(String.fromCharCode(b));
  });
});

describe('ClipTokenizer on a hand-built vocabulary', () => {
  it('applies merges by rank with the end-of-word marker', () => {
    const t = hand();
    expect(t.tokenize('panda')).toEqual(['pan', 'da</w>']);
    expect(t.encode('panda')).toEqual([BOS, 513, 514, EOS]);
    // 'a' alone is the word-final byte symbol; 'of' merges whole; 'pan' without a final 'da' stays bytes+merge.
    expect(t.encode('a panda of')).toEqual([BOS, wordEndId('a'), 513, 514, 515, EOS]);
    expect(t.tokenize('pan')).toEqual(['pa', 'n</w>']);
    expect(t.tokenize('papa')).toEqual(['pa', 'p', 'a</w>']);
  });

  it('lower-cases, collapses whitespace and splits punctuation and digits like CLIP', () => {
    const t = hand();
    expect(t.tokenize('  PANDA,\n\tOf  ')).toEqual(['pan', 'da</w>', ',</w>', 'of</w>']);
    expect(t.tokenize('42!?')).toEqual(['4</w>', '2</w>', '!', '?</w>']);
    expect(t.tokenize("panda's")).toEqual(['pan', 'da</w>', "'", 's</w>']);
  });

  it('reports the ids of special tokens and the base vocabulary size', () => {
    const t = hand();
    expect(t.vocabSize).toBe(518);
    expect([t.bosId, t.eosId, t.padId]).toEqual([BOS, EOS, 0]);
    expect(t.idOf('pan')).toBe(513);
    expect(t.idOf('nope')).toBeUndefined();
  });

  it('goes through bytes for characters the merges never saw (emoji, accents)', () => {
    const t = hand();
    const emoji = t.tokenize('🐼');
    expect(emoji).toHaveLength(4); // F0 9F 90 BC
    expect(t.decode(t.encode('a 🐼 café'))).toBe('a 🐼 café');
    expect(t.tokenize('é')).toHaveLength(2);
  });

  it('decodes what it encodes, to the normalized text', () => {
    const t = hand();
    for (const text of ['a panda of pandas', 'Two  Dogs\nin the PARK', 'pan da papa', 'x 9 y']) {
      expect(t.decode(t.encode(text))).toBe(normalizePromptText(text));
    }
  });

  it('keeps the written-out special tokens whole', () => {
    const t = hand();
    expect(t.encode('<|endoftext|> panda')).toEqual([BOS, EOS, 513, 514, EOS]);
  });
});

describe('padding and truncation', () => {
  it('pads with the pad token of the files: "!" (SD 2.x) or <|endoftext|> (SD 1.x)', () => {
    const sd2 = new ClipTokenizer(tinyTokenizerFiles({ merges: handMerges }));
    expect(Array.from(sd2.encodePadded('panda', 8))).toEqual([BOS, 513, 514, EOS, 0, 0, 0, 0]);
    const sd1 = new ClipTokenizer(tinyTokenizerFiles({ merges: handMerges, padToken: '<|endoftext|>' }));
    expect(Array.from(sd1.encodePadded('panda', 6))).toEqual([BOS, 513, 514, EOS, EOS, EOS]);
  });

  it('truncates long prompts to start + 75 tokens + end at 77', () => {
    const t = hand();
    const ids = t.encodePadded(Array.from({ length: 100 }, () => 'panda').join(' '));
    expect(ids).toHaveLength(77);
    expect(ids[0]).toBe(BOS);
    expect(ids[76]).toBe(EOS);
    expect(Array.from(ids.subarray(1, 76))).toEqual(Array.from({ length: 75 }, (_, i) => (i % 2 === 0 ? 513 : 514)));
  });

  it('uses model_max_length from tokenizer_config.json', () => {
    const t = new ClipTokenizer(tinyTokenizerFiles({ merges: handMerges, modelMaxLength: 16 }));
    expect(t.modelMaxLength).toBe(16);
    expect(t.encodePadded('panda')).toHaveLength(16);
  });
});

describe('added placeholder tokens', () => {
  it('gets ids after the base vocabulary, in order, and is idempotent', () => {
    const t = hand();
    expect(t.addTokens(['<asset0>', '<asset1>'])).toEqual([518, 519]);
    expect(t.addTokens(['<asset1>', '<asset2>'])).toEqual([519, 520]);
    expect(t.placeholderIds).toEqual([518, 519, 520]);
    expect(t.vocabSize).toBe(518);
    expect(t.size).toBe(521);
  });

  it('stays a single token next to punctuation and words, with surrounding spaces dropped', () => {
    const t = hand();
    t.addTokens(['<asset0>', '<asset1>', '<asset10>']);
    expect(t.tokenize('a <asset0>, of<asset1>')).toEqual(['a</w>', '<asset0>', ',</w>', 'of</w>', '<asset1>']);
    expect(t.encode('<asset10> panda')).toEqual([BOS, 520, 513, 514, EOS]);
    expect(t.decode(t.encode('a photo of <asset0> and <asset1>'))).toBe('a photo of <asset0> and <asset1>');
  });

  it('matches case-sensitively, like HF added tokens (the upper-case form goes through BPE)', () => {
    const t = hand();
    t.addTokens(['<asset0>']);
    expect(t.tokenize('<ASSET0>')).not.toContain('<asset0>');
  });

  it('gives a token of several vectors consecutive ids, all of them wherever a prompt names it', () => {
    const t = hand();
    expect(t.addTokens(['<asset0>', '<asset1>'], 3)).toEqual([518, 521]);
    expect(t.idsOf('<asset1>')).toEqual([521, 522, 523]);
    expect(t.idsOf('<asset1>_2')).toEqual([523]);
    expect(t.idsOf('<asset9>')).toBeUndefined();
    expect(t.addedTokens).toEqual(['<asset0>', '<asset0>_1', '<asset0>_2', '<asset1>', '<asset1>_1', '<asset1>_2']);
    expect(t.encode('a <asset1> panda')).toEqual([BOS, t.idOf('a</w>'), 521, 522, 523, 513, 514, EOS]);
    // padding and truncation count every vector: only two of <asset0>'s three fit after 'a'
    expect(Array.from(t.encodePadded('a <asset0>', 5))).toEqual([BOS, t.idOf('a</w>'), 518, 519, EOS]);
    expect(t.decode(t.encode('<asset0> and <asset1>'))).toBe('<asset0> <asset0>_1 <asset0>_2 and <asset1> <asset1>_1 <asset1>_2');
    // idempotent at the same count; another count for a known token, or a taken vector name, is refused
    expect(t.addTokens(['<asset1>'], 3)).toEqual([521]);
    expect(() => t.addTokens(['<asset1>'], 2)).toThrow(/already has 3 vectors/);
    const u = hand();
    u.addTokens(['<x>_1']);
    expect(() => u.addTokens(['<x>'], 2)).toThrow(/<x>_1 .* taken/);
    expect(() => u.addTokens(['<y>'], 0)).toThrow(DiffusionError);
  });

  it('rejects tokens with whitespace', () => {
    expect(() => hand().addTokens(['<a b>'])).toThrow(DiffusionError);
  });

  it('initialises from the first sub-token of a class word; a class word with no token is BAD_PROMPT', () => {
    const t = hand();
    expect(t.firstSubTokenId('Panda')).toBe(513);
    expect(t.classWordIds('panda')).toEqual([513, 514]);
    expect(() => t.firstSubTokenId('   ')).toThrow(expect.objectContaining({ code: 'BAD_PROMPT' }));
  });
});

describe('tiny tokenizer files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tok-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a CLIP-format folder that fromDir reads back, every listed word one token', () => {
    const { vocabSize } = writeTinyTokenizer(join(dir, 'tiny'));
    const t = ClipTokenizer.fromDir(join(dir, 'tiny'));
    expect(t.vocabSize).toBe(vocabSize);
    expect(readFileSync(join(dir, 'tiny', 'merges.txt'), 'utf8').startsWith('#version')).toBe(true);
    expect(t.idOf('!')).toBe(0);
    expect(t.padId).toBe(0);
    expect([t.bosId, t.eosId]).toEqual([vocabSize - 2, vocabSize - 1]);
    for (const w of TINY_TOKENIZER_WORDS) expect(t.tokenize(w)).toEqual([`${w}</w>`]);
    expect(t.decode(t.encode('A photo of a teddy bear playing with a dog on the beach'))).toBe('a photo of a teddy bear playing with a dog on the beach');
    // Words outside the list fall back to smaller pieces and still round-trip.
    expect(t.tokenize('zebra').length).toBeGreaterThan(1);
    expect(t.decode(t.encode('zebra'))).toBe('zebra');
  });

  it('learns merges deterministically and honours a cap', () => {
    expect(learnMerges(['aab', 'aab', 'ab'])).toEqual(learnMerges(['aab', 'aab', 'ab']));
    expect(learnMerges(['abab', 'abx'], 1)).toEqual([['a', 'b']]); // 'a b' occurs 3 times
    expect(learnMerges(['abab', 'ab'], 1)).toEqual([['a', 'b</w>']]); // 'a b</w>' twice beats 'a b' once
    const t = new ClipTokenizer(tinyTokenizerFiles({ words: ['panda', 'pancake'], merges: 2 }));
    expect(t.vocabSize).toBe(512 + 2 + 2);
  });

  it('fromDir names the missing or malformed file', () => {
    const d = join(dir, 'broken');
    writeTinyTokenizer(d, { words: ['cat'] });
    rmSync(join(d, 'merges.txt'));
    expect(() => ClipTokenizer.fromDir(d)).toThrow(/merges\.txt is missing/);
    writeTinyTokenizer(d, { words: ['cat'] });
    writeFileSync(join(d, 'vocab.json'), '{"a": 0,');
    expect(() => ClipTokenizer.fromDir(d)).toThrow(
      expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringContaining('vocab.json is not valid JSON') }),
    );
    expect(() => ClipTokenizer.fromDir(join(dir, 'nowhere'))).toThrow(expect.objectContaining({ code: 'MISSING_FILE' }));
  });
});

describe('agreement with Hugging Face', () => {
  // Ids from @huggingface/tokenizers (transformers.js' engine) with a CLIPTokenizerFast-style config, on a
  // frozen vocabulary stored in the fixture: scripts/export_tokenizer_reference.mjs.
  const fixture = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tokenizer', 'reference.json'), 'utf8')) as {
    vocab: Record<string, number>;
    merges: string;
    specialTokensMap: Record<string, unknown>;
    tokenizerConfig: Record<string, unknown>;
    addedTokens: string[];
    cases: Array<{ text: string; ids: number[]; tokens: string[] }>;
  };

  it.each(fixture.cases.map((c) => [c.text, c] as const))('encodes %j to the same ids', (_, c) => {
    const t = new ClipTokenizer(fixture);
    t.addTokens(fixture.addedTokens);
    expect(t.tokenize(c.text)).toEqual(c.tokens);
    expect(t.encode(c.text)).toEqual(c.ids);
  });
});
