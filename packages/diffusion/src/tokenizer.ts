/**
 * CLIP byte-level BPE tokenizer, as OpenAI CLIP and Hugging Face `CLIPTokenizer` implement it:
 * NFC + whitespace collapse + lower-casing, the CLIP pre-tokenization regex, bytes_to_unicode, BPE over
 * merge ranks with a `</w>` end-of-word marker. Added tokens (placeholders `<asset0>`...) are matched
 * before all that, case-sensitively, like HF added tokens, and are always single tokens.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiffusionError } from './errors.js';

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';
export const END_OF_WORD = '</w>';
/** Words remembered by the BPE cache before it starts afresh (a long-running service sees many prompts). */
const BPE_CACHE_LIMIT = 50_000;
/** CLIP's context length. */
export const CLIP_MAX_LENGTH = 77;

/** The CLIP pre-tokenization pattern (HF `CLIPTokenizer.pat`), applied to cleaned, lower-cased text. */
const CLIP_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/**
 * GPT-2/CLIP's reversible map from the 256 byte values to printable unicode characters (printable Latin-1
 * bytes map to themselves, the rest to U+0100...). Entries are in the order CLIP's vocabulary lists them.
 */
export function bytesToUnicode(): Array<[byte: number, char: string]> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return bs.map((b, i) => [b, String.fromCodePoint(cs[i]!)]);
}

const BYTE_ENCODER: string[] = new Array<string>(256);
const BYTE_DECODER = new Map<string, number>();
for (const [b, c] of bytesToUnicode()) {
  BYTE_ENCODER[b] = c;
  BYTE_DECODER.set(c, b);
}

/** CLIP's text cleanup: NFC, whitespace runs to one space, trimmed, lower-cased. */
export function normalizePromptText(text: string): string {
  return text.normalize('NFC').replace(/\s+/gu, ' ').trim().toLowerCase();
}

/** Splits cleaned text (normalizePromptText) into the pieces BPE runs on, with CLIP's pattern. */
export function preTokenize(cleanText: string): string[] {
  return cleanText.match(CLIP_PATTERN) ?? [];
}

/** The raw contents of a CLIP tokenizer folder. */
export interface ClipTokenizerFiles {
  /** vocab.json: token -> id. */
  vocab: Record<string, number>;
  /** merges.txt contents (a leading `#version` line is skipped). */
  merges: string;
  /** special_tokens_map.json, when present. */
  specialTokensMap?: Record<string, unknown>;
  /** tokenizer_config.json, when present. */
  tokenizerConfig?: Record<string, unknown>;
}

export interface DecodeOptions {
  /** Drop the start token and everything from the first end token on (padding); default true. */
  skipSpecialTokens?: boolean;
}

/** A special-token entry is a string or an AddedToken-like object `{ content }`. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

export class ClipTokenizer {
  readonly bosToken: string;
  readonly eosToken: string;
  readonly padToken: string;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** Id of the unknown token (CLIP: `<|endoftext|>`), used for BPE pieces missing from the vocabulary. */
  readonly unkId: number | undefined;
  /** tokenizer_config.json `model_max_length` (77 for CLIP). */
  readonly modelMaxLength: number;
  /** Size of the base vocabulary: rows of the text encoder's token embedding (added tokens excluded). */
  readonly vocabSize: number;

  private readonly encoder = new Map<string, number>();
  private readonly decoder = new Map<number, string>();
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  private readonly added: string[] = [];
  private addedPattern: RegExp | undefined;
  /** Added tokens of several vectors -> the tokens they stand for (themselves first). */
  private readonly expansions = new Map<string, string[]>();

  constructor(files: ClipTokenizerFiles, source = 'tokenizer') {
    for (const [tok, id] of Object.entries(files.vocab)) {
      if (!Number.isInteger(id) || id < 0)
        throw new DiffusionError(
          'BAD_CONFIG',
          `${source}: vocab.json maps ${JSON.stringify(tok)} to ${JSON.stringify(id)}, expected a non-negative integer id`,
        );
      this.encoder.set(tok, id);
      this.decoder.set(id, tok);
    }
    if (this.encoder.size === 0) throw new DiffusionError('BAD_CONFIG', `${source}: vocab.json is empty`);
    this.vocabSize = Math.max(...this.decoder.keys()) + 1;

    const lines = files.merges.split(/\r?\n/);
    let rank = 0;
    for (const [i, raw] of lines.entries()) {
      const line = raw.trim();
      if (line === '' || (i === 0 && line.startsWith('#version'))) continue;
      const parts = line.split(/\s+/);
      if (parts.length !== 2)
        throw new DiffusionError('BAD_CONFIG', `${source}: merges.txt line ${i + 1} is ${JSON.stringify(raw)}, expected two space-separated symbols`);
      const key = `${parts[0]} ${parts[1]}`;
      if (!this.ranks.has(key)) this.ranks.set(key, rank++);
    }

    const map = files.specialTokensMap ?? {};
    const config = files.tokenizerConfig ?? {};
    const pick = (name: string, fallback: string) => tokenContent(map[name]) ?? tokenContent(config[name]) ?? fallback;
    this.bosToken = pick('bos_token', START_OF_TEXT);
    this.eosToken = pick('eos_token', END_OF_TEXT);
    this.padToken = pick('pad_token', this.eosToken);
    const unkToken = pick('unk_token', this.eosToken);
    const need = (tok: string, role: string) => {
      const id = this.encoder.get(tok);
      if (id === undefined) throw new DiffusionError('BAD_CONFIG', `${source}: the ${role} token ${JSON.stringify(tok)} is not in vocab.json`);
      return id;
    };
    this.bosId = need(this.bosToken, 'start (bos)');
    this.eosId = need(this.eosToken, 'end (eos)');
    this.padId = need(this.padToken, 'pad');
    this.unkId = this.encoder.get(unkToken);
    const maxLen = config['model_max_length'];
    // HF writes a huge sentinel (1e30) when no limit is known; CLIP's context is 77.
    this.modelMaxLength = typeof maxLen === 'number' && Number.isInteger(maxLen) && maxLen > 2 && maxLen < 1e6 ? maxLen : CLIP_MAX_LENGTH;
  }

  /** Reads vocab.json, merges.txt and (when present) special_tokens_map.json, tokenizer_config.json. */
  static fromDir(dir: string): ClipTokenizer {
    if (!existsSync(dir)) throw new DiffusionError('MISSING_FILE', `tokenizer directory ${dir} does not exist`);
    const read = (name: string, required: boolean): string | undefined => {
      const file = join(dir, name);
      if (!existsSync(file)) {
        if (required)
          throw new DiffusionError('MISSING_FILE', `tokenizer file ${file} is missing (CLIP BPE ${name === 'vocab.json' ? 'vocabulary' : 'merge list'})`);
        return undefined;
      }
      return readFileSync(file, 'utf8');
    };
    const json = (name: string, required: boolean): Record<string, unknown> | undefined => {
      const text = read(name, required);
      if (text === undefined) return undefined;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw new DiffusionError('BAD_CONFIG', `${join(dir, name)} is not valid JSON: ${(e as Error).message}`, { cause: e });
      }
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw new DiffusionError('BAD_CONFIG', `${join(dir, name)} must hold a JSON object`);
      return value as Record<string, unknown>;
    };
    return new ClipTokenizer(
      {
        vocab: json('vocab.json', true) as Record<string, number>,
        merges: read('merges.txt', true)!,
        specialTokensMap: json('special_tokens_map.json', false),
        tokenizerConfig: json('tokenizer_config.json', false),
      },
      dir,
    );
  }

  /** Vocabulary size including added tokens (`len(tokenizer)` in HF). */
  get size(): number {
    return this.vocabSize + this.added.length;
  }

  /** Added tokens, in the order of their ids. */
  get addedTokens(): readonly string[] {
    return this.added;
  }

  /** Ids of the added (placeholder) tokens, in order. */
  get placeholderIds(): number[] {
    return this.added.map((_, i) => this.vocabSize + i);
  }

  /** Id of a token (vocabulary or added), or undefined. */
  idOf(token: string): number | undefined {
    const i = this.added.indexOf(token);
    return i >= 0 ? this.vocabSize + i : this.encoder.get(token);
  }

  /** Ids a token stands for in a prompt: its vectors' for an added token of several (addTokens), else its own id; undefined when unknown. */
  idsOf(token: string): number[] | undefined {
    const pieces = this.expansions.get(token);
    if (pieces) return pieces.map((p) => this.idOf(p)!);
    const id = this.idOf(token);
    return id === undefined ? undefined : [id];
  }

  /** Token string of an id, or undefined. */
  tokenOf(id: number): string | undefined {
    if (id >= this.vocabSize && id < this.size) return this.added[id - this.vocabSize];
    return this.decoder.get(id);
  }

  /**
   * Adds single tokens matched verbatim (case-sensitive) before BPE, e.g. `<asset0>`. New ids are
   * vocabSize + (index among added tokens); a token already known keeps its id. Returns the ids. With
   * `vectors` V > 1 each token stands for V consecutive ids (`<asset0>`, `<asset0>_1`, ..., `<asset0>_{V-1}`:
   * diffusers' multi-vector textual inversion), so a prompt naming it once gets all V; the id returned is the first.
   */
  addTokens(tokens: readonly string[], vectors = 1): number[] {
    if (!Number.isInteger(vectors) || vectors < 1)
      throw new DiffusionError('BAD_ARGUMENT', `vectors per added token must be a positive integer, got ${vectors}`);
    const ids = tokens.map((tok) => {
      if (tok.length === 0 || /\s/u.test(tok))
        throw new DiffusionError('BAD_ARGUMENT', `added token ${JSON.stringify(tok)} must be non-empty and contain no whitespace`);
      const known = this.idOf(tok);
      if (known !== undefined) {
        const has = this.expansions.get(tok)?.length ?? 1;
        if (has !== vectors) throw new DiffusionError('BAD_ARGUMENT', `added token ${tok} already has ${has} vectors, not ${vectors}`);
        return known;
      }
      // textual inversion's multi-vector tokens: `<asset0>` stands for `<asset0>`, `<asset0>_1`, ... in every
      // prompt, each its own id and embedding row (the rows of one token are consecutive)
      const pieces = Array.from({ length: vectors }, (_, k) => (k === 0 ? tok : `${tok}_${k}`));
      for (const p of pieces.slice(1))
        if (this.idOf(p) !== undefined)
          throw new DiffusionError('BAD_ARGUMENT', `added token ${tok} needs the name ${p} for its vector ${p.slice(tok.length + 1)}, which is taken`);
      this.added.push(...pieces);
      if (vectors > 1) this.expansions.set(tok, pieces);
      return this.vocabSize + this.added.length - vectors;
    });
    // Longest first, so `<asset10>` wins over a hypothetical `<asset1>` prefix-sharing token.
    const alternatives = [...this.added].sort((a, b) => b.length - a.length).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.addedPattern = alternatives.length ? new RegExp(`(${alternatives.join('|')})`, 'u') : undefined;
    return ids;
  }

  /** BPE tokens (byte-unicode strings; added tokens verbatim) of `text`, without start/end tokens. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const [i, piece] of this.splitOnAdded(text).entries()) {
      // Odd indices are added tokens (split with a capture group); whitespace around them is dropped by
      // the cleanup of the neighbouring pieces, as in HF.
      if (i % 2 === 1) out.push(...(this.expansions.get(piece) ?? [piece]));
      else for (const word of preTokenize(normalizePromptText(piece))) out.push(...this.bpe(word));
    }
    return out;
  }

  /** Token ids with start and end tokens, no padding or truncation. */
  encode(text: string): number[] {
    return [this.bosId, ...this.tokenize(text).map((t) => this.tokenId(t)), this.eosId];
  }

  /**
   * Ids padded to `maxLength` with the pad token. Longer prompts are truncated as HF does with
   * truncation=True: start + the first maxLength-2 tokens + end, so the end token is always kept.
   */
  encodePadded(text: string, maxLength = this.modelMaxLength): Int32Array {
    if (!Number.isInteger(maxLength) || maxLength < 2) throw new DiffusionError('BAD_ARGUMENT', `maxLength must be an integer >= 2, got ${maxLength}`);
    const body = this.tokenize(text)
      .slice(0, maxLength - 2)
      .map((t) => this.tokenId(t));
    const ids = new Int32Array(maxLength).fill(this.padId);
    ids[0] = this.bosId;
    ids.set(body, 1);
    ids[body.length + 1] = this.eosId;
    return ids;
  }

  /** Text of ids: BPE pieces joined back through the byte map, `</w>` as spaces; added tokens as words. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    let list = Array.from(ids);
    if (options.skipSpecialTokens ?? true) {
      if (list[0] === this.bosId) list = list.slice(1);
      const end = list.indexOf(this.eosId);
      if (end >= 0) list = list.slice(0, end);
    }
    const words: string[] = [];
    let run: string[] = [];
    const flush = () => {
      if (run.length) words.push(decodeByteLevel(run.join('')));
      run = [];
    };
    for (const id of list) {
      const tok = this.tokenOf(id);
      if (tok === undefined) throw new DiffusionError('BAD_ARGUMENT', `token id ${id} is outside the vocabulary (size ${this.size})`);
      if (id >= this.vocabSize) {
        flush();
        words.push(tok);
      } else run.push(tok);
    }
    flush();
    return words.filter((w) => w.length > 0).join(' ');
  }

  /** Ids of a class word (no start/end); BAD_PROMPT when it yields no token (empty, whitespace only). */
  classWordIds(word: string): number[] {
    const ids = this.tokenize(word).map((t) => this.tokenId(t));
    if (ids.length === 0) throw new DiffusionError('BAD_PROMPT', `class word ${JSON.stringify(word)} encodes to no token`);
    return ids;
  }

  /** Id of the first BPE sub-token of a class word: the row new placeholder embeddings start from (METHOD.md). */
  firstSubTokenId(word: string): number {
    return this.classWordIds(word)[0]!;
  }

  private tokenId(token: string): number {
    const id = this.idOf(token) ?? this.unkId;
    if (id === undefined)
      throw new DiffusionError('BAD_PROMPT', `token ${JSON.stringify(token)} is not in the vocabulary and the tokenizer has no unknown token`);
    return id;
  }

  private splitOnAdded(text: string): string[] {
    return this.addedPattern ? text.split(this.addedPattern) : [text];
  }

  /** BPE of one pre-token: byte-unicode symbols, last one marked `</w>`, merged by rank until no merge applies. */
  private bpe(pretoken: string): string[] {
    // Written-out special tokens stay whole (the reference seeds its cache with them).
    if (pretoken === START_OF_TEXT || pretoken === END_OF_TEXT) return [pretoken];
    const cached = this.cache.get(pretoken);
    if (cached) return cached;
    let word = Array.from(new TextEncoder().encode(pretoken), (b) => BYTE_ENCODER[b]!);
    word[word.length - 1] += END_OF_WORD;
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best]!;
      const second = word[best + 1]!;
      // Merge every non-overlapping occurrence left to right, as the reference implementation does.
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (i + 1 < word.length && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else merged.push(word[i++]!);
      }
      word = merged;
    }
    if (this.cache.size >= BPE_CACHE_LIMIT) this.cache.clear();
    this.cache.set(pretoken, word);
    return word;
  }
}

/** Byte-unicode string -> text: back to bytes, UTF-8 decode (invalid sequences -> U+FFFD), `</w>` -> space. */
function decodeByteLevel(s: string): string {
  const bytes: number[] = [];
  for (const ch of s) {
    const b = BYTE_DECODER.get(ch);
    if (b !== undefined) bytes.push(b);
    else for (const x of new TextEncoder().encode(ch)) bytes.push(x);
  }
  return new TextDecoder('utf-8').decode(new Uint8Array(bytes)).replaceAll(END_OF_WORD, ' ').trim();
}
