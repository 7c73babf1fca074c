/**
 * A personalization input (one image, N masks with class words) from bytes or files: decoded, validated
 * with errors that name the subject at fault, and fitted (cover crop) to the backbone's square size.
 */
import { readFile } from 'node:fs/promises';
import { area, decode, decodeMask, fitToSquare, intersection, iou } from '@dynasyn/imaging';
import { InputError } from './input-error.js';
import type { Mask, PersonalizationInput, RgbImage, Subject } from './types.js';

// What a caller of the validation alone (the API, through `@dynasyn/dynasyn/inputs`) needs to tell its errors.
export { INPUT_CODES, InputError, isInputError, type InputErrorCode } from './input-error.js';

/** What the validation needs of a tokenizer (diffusion's ClipTokenizer fits). */
export interface ClassWordTokenizer {
  classWordIds(word: string): number[];
  readonly unkId?: number | undefined;
}

export interface InputLimits {
  /** Placeholder slots (`<asset0>..`); more subjects are refused. Default 8. */
  maxSubjects?: number;
  /** A mask covering more than this fraction of the image is refused. Default 0.98. */
  maxCoverage?: number;
  /** Two masks with intersection-over-union above this are refused as the same region. Default 0.9. */
  maxOverlap?: number;
  /** Refuses class words and noun phrases this tokenizer cannot encode; skipped when absent. */
  tokenizer?: ClassWordTokenizer;
}

export interface SubjectSource {
  /** Encoded mask (PNG/JPEG/WebP: alpha cut-out or luma >= 128) or a decoded 0/1 mask. */
  mask: Uint8Array | Mask;
  classWord: string;
  nounPhrase?: string;
  /** Name used in error messages (a file name); default `mask i`. */
  name?: string;
}

export interface InputSource {
  /** Encoded image or decoded RGB. */
  image: Uint8Array | RgbImage;
  /** Name used in error messages; default `image`. */
  imageName?: string;
  subjects: SubjectSource[];
}

export const DEFAULT_MAX_SUBJECTS = 8;

/** Decodes and validates `source`, then fits image and masks to `size` x `size` (the backbone's sampleSize). */
export async function loadInput(source: InputSource, size: number, limits: InputLimits = {}): Promise<PersonalizationInput> {
  const imageName = source.imageName ?? 'image';
  const image = isEncoded(source.image)
    ? await decodeOr(() => decode(source.image as Uint8Array), 'UNREADABLE_IMAGE', `cannot decode image ${imageName}`)
    : source.image;
  checkSubjectCount(source.subjects.length, limits.maxSubjects ?? DEFAULT_MAX_SUBJECTS);
  const subjects: Subject[] = [];
  for (const [i, s] of source.subjects.entries()) {
    const name = s.name ?? `mask ${i}`;
    const mask = isEncoded(s.mask) ? await decodeOr(() => decodeMask(s.mask as Uint8Array), 'UNREADABLE_MASK', `cannot decode ${name}`) : binary(s.mask);
    subjects.push({ mask, classWord: s.classWord, ...(s.nounPhrase !== undefined ? { nounPhrase: s.nounPhrase } : {}) });
  }
  const names = source.subjects.map((s, i) => s.name ?? `mask ${i}`);
  validateInput({ image, subjects }, { ...limits, names, imageName });
  const fitted = await fitToSquare(
    image,
    subjects.map((s) => s.mask),
    size,
  );
  fitted.masks.forEach((m, i) => {
    if (area(m) === 0)
      throw new InputError(
        'EMPTY_MASK',
        `${names[i]} (${subjects[i]!.classWord}) lies outside the centre square crop of ${imageName}: crop the image around the subjects first`,
      );
  });
  return { image: fitted.image, subjects: subjects.map((s, i) => ({ ...s, mask: fitted.masks[i]! })) };
}

/** Paths of the image and masks, as the CLI takes them. */
export interface InputFiles {
  image: string;
  masks: string[];
  classWords: string[];
  /** Optional noun phrases, one per mask when given. */
  nounPhrases?: string[];
}

/** Reads the files of an input and loads it (see loadInput); unreadable files are named in the error. */
export async function readInputFiles(files: InputFiles, size: number, limits: InputLimits = {}): Promise<PersonalizationInput> {
  if (files.masks.length !== files.classWords.length) {
    throw new InputError('BAD_OPTION', `${files.masks.length} masks and ${files.classWords.length} class words: give one class word per mask`);
  }
  if (files.nounPhrases && files.nounPhrases.length !== files.masks.length) {
    throw new InputError('BAD_OPTION', `${files.nounPhrases.length} noun phrases for ${files.masks.length} masks: give one per mask or none`);
  }
  const image = await readOr(files.image, 'UNREADABLE_IMAGE', 'image');
  const subjects: SubjectSource[] = [];
  for (const [i, file] of files.masks.entries()) {
    const phrase = files.nounPhrases?.[i];
    subjects.push({
      mask: await readOr(file, 'UNREADABLE_MASK', 'mask'),
      classWord: files.classWords[i]!,
      name: file,
      ...(phrase !== undefined ? { nounPhrase: phrase } : {}),
    });
  }
  return loadInput({ image, imageName: files.image, subjects }, size, limits);
}

/**
 * Checks a decoded input before fitting: subject count, mask sizes, empty and whole-image masks, class
 * words, near-identical masks. Throws InputError naming the first culprit.
 */
export function validateInput(input: PersonalizationInput, limits: InputLimits & { names?: string[]; imageName?: string } = {}): void {
  const { image, subjects } = input;
  const imageName = limits.imageName ?? 'image';
  checkSubjectCount(subjects.length, limits.maxSubjects ?? DEFAULT_MAX_SUBJECTS);
  const maxCoverage = limits.maxCoverage ?? 0.98;
  const maxOverlap = limits.maxOverlap ?? 0.9;
  const name = (i: number) => `${limits.names?.[i] ?? `mask ${i}`} (${subjects[i]!.classWord || 'no class word'})`;
  subjects.forEach((s, i) => {
    const m = s.mask;
    if (m.width !== image.width || m.height !== image.height) {
      throw new InputError(
        'MASK_SIZE_MISMATCH',
        `${name(i)} is ${m.width}x${m.height} but ${imageName} is ${image.width}x${image.height}: masks must have the image's size`,
      );
    }
    const covered = area(m) / (m.width * m.height);
    if (covered === 0) throw new InputError('EMPTY_MASK', `${name(i)} is empty: it selects no pixel of ${imageName}`);
    if (covered > maxCoverage) {
      throw new InputError(
        'MASK_COVERS_IMAGE',
        `${name(i)} covers ${(covered * 100).toFixed(1)}% of ${imageName} (limit ${(maxCoverage * 100).toFixed(0)}%): a mask must leave background around its subject`,
      );
    }
    if (!touchesCentreSquare(m)) {
      throw new InputError(
        'EMPTY_MASK',
        `${name(i)} lies outside the centre square crop of ${imageName} (the backbone sees only that square): crop the image around the subjects first`,
      );
    }
    checkText(s.classWord, `class word of ${limits.names?.[i] ?? `mask ${i}`}`, limits.tokenizer);
    if (s.nounPhrase !== undefined) checkText(s.nounPhrase, `noun phrase of ${name(i)}`, limits.tokenizer);
  });
  for (let i = 0; i < subjects.length; i++) {
    for (let j = i + 1; j < subjects.length; j++) {
      const a = subjects[i]!.mask;
      const b = subjects[j]!.mask;
      if (area(intersection(a, b)) === 0) continue;
      const overlap = iou(a, b);
      if (overlap > maxOverlap) {
        throw new InputError(
          'MASKS_OVERLAP',
          `${name(i)} and ${name(j)} overlap almost completely (IoU ${overlap.toFixed(2)} > ${maxOverlap}): each subject needs its own region`,
        );
      }
    }
  }
}

function checkSubjectCount(n: number, max: number): void {
  if (!Number.isInteger(max) || max < 1) throw new InputError('BAD_OPTION', `maxSubjects must be a positive integer, got ${max}`);
  if (n === 0) throw new InputError('SUBJECT_COUNT', 'no subject: give at least one mask with its class word');
  if (n > max)
    throw new InputError('SUBJECT_COUNT', `${n} masks but only ${max} placeholder slots (<asset0>..<asset${max - 1}>): give at most ${max} subjects`);
}

/**
 * Everything of a personalization request that can be checked before any work runs: the decoded image and
 * masks with their class words (validateInput) and the sample prompts' placeholders. The API runs it before it
 * stores or queues anything; the stages run the same checks (loadInput, the sample stage), so a request the API
 * accepts is never refused by a worker for its inputs (only the backbone's tokenizer, which the API does not
 * load, can still refuse a class word).
 */
export function validatePersonalizationInput(
  input: PersonalizationInput & { prompts?: readonly string[] },
  limits: InputLimits & { names?: string[]; imageName?: string } = {},
): void {
  validateInput(input, limits);
  input.prompts?.forEach((p, i) => checkPrompt(p, input.subjects.length, `prompts[${i}]`));
}

/**
 * Throws (BAD_OPTION) when `prompt` names `<assetK>` with K >= `subjects`, or holds a control character (a NUL
 * cannot be stored; a line break would split a prompts file).
 */
export function checkPrompt(prompt: string, subjects: number, where = 'prompt'): void {
  const control = /\p{Cc}/u.exec(prompt);
  if (control) throw new InputError('BAD_OPTION', `${where} contains the control character ${codePoint(control[0])}: prompts are one line of text`);
  for (const m of prompt.matchAll(/<asset(\d+)>/g)) {
    if (Number(m[1]) >= subjects)
      throw new InputError('BAD_OPTION', `${where}: ${m[0]} names no subject (there are ${subjects}: <asset0>..<asset${subjects - 1}>)`);
  }
}

/**
 * The rules every class word and noun phrase meets, with or without a tokenizer: some text, no placeholder
 * syntax, a letter or digit, no control characters (Postgres cannot store a NUL), no emoji or pictographs (no
 * class of the backbone's vocabulary: the tokenizer splits them into byte pieces).
 */
function checkText(text: string, what: string, tokenizer?: ClassWordTokenizer): void {
  if (typeof text !== 'string' || text.trim() === '') throw new InputError('BAD_CLASS_WORD', `${what} is empty`);
  const control = /\p{Cc}/u.exec(text);
  if (control)
    throw new InputError('BAD_CLASS_WORD', `${what} ${JSON.stringify(text)} contains the control character ${codePoint(control[0])}: give one plain word`);
  // A class word replaces a placeholder in class prompts; one that looks like a placeholder would be matched as one.
  if (/<asset\d*>/i.test(text) || /[<>]/.test(text))
    throw new InputError('BAD_CLASS_WORD', `${what} ${JSON.stringify(text)} contains < or >, which mark placeholder tokens`);
  const symbol = /[\p{Extended_Pictographic}\p{So}\p{Cs}\u200d\ufe0f]/u.exec(text);
  if (symbol)
    throw new InputError(
      'BAD_CLASS_WORD',
      `${what} ${JSON.stringify(text)} contains the symbol ${symbol[0]} (${codePoint(symbol[0])}): class words are plain words like "dog"`,
    );
  if (!/[\p{L}\p{N}]/u.test(text)) throw new InputError('BAD_CLASS_WORD', `${what} ${JSON.stringify(text)} has no letter or digit: it names no class`);
  if (!tokenizer) return;
  let ids: number[];
  try {
    ids = tokenizer.classWordIds(text);
  } catch (e) {
    throw new InputError('BAD_CLASS_WORD', `${what} ${JSON.stringify(text)} cannot be encoded by the backbone's tokenizer: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (tokenizer.unkId !== undefined && ids.includes(tokenizer.unkId)) {
    throw new InputError(
      'BAD_CLASS_WORD',
      `${what} ${JSON.stringify(text)} has pieces the backbone's tokenizer does not know (they encode to the unknown token)`,
    );
  }
}

const codePoint = (c: string): string => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Whether `m` selects a pixel of the centre square a cover fit to a square keeps (imaging's fitToSquare). */
function touchesCentreSquare(m: Mask): boolean {
  const side = Math.min(m.width, m.height);
  const x0 = Math.floor((m.width - side) / 2);
  const y0 = Math.floor((m.height - side) / 2);
  for (let y = y0; y < y0 + side; y++) {
    const row = y * m.width;
    for (let x = x0; x < x0 + side; x++) if (m.data[row + x]) return true;
  }
  return false;
}

function isEncoded(x: Uint8Array | RgbImage | Mask): x is Uint8Array {
  return x instanceof Uint8Array;
}

/** A decoded mask with any non-zero value as 1 (callers may pass 0/255 masks). */
function binary(m: Mask): Mask {
  if (m.data.length !== m.width * m.height)
    throw new InputError('UNREADABLE_MASK', `mask data has ${m.data.length} bytes for ${m.width}x${m.height}: expected one byte per pixel`);
  return m.data.every((v) => v === 0 || v === 1) ? m : { width: m.width, height: m.height, data: m.data.map((v) => (v ? 1 : 0)) };
}

async function decodeOr<T>(f: () => Promise<T>, code: 'UNREADABLE_IMAGE' | 'UNREADABLE_MASK', what: string): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw new InputError(code, `${what}: ${(e as Error).message}`, { cause: e });
  }
}

async function readOr(file: string, code: 'UNREADABLE_IMAGE' | 'UNREADABLE_MASK', what: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new InputError(code, `cannot read ${what} ${file}: ${err.code === 'ENOENT' ? 'no such file' : (err.code ?? err.message)}`, { cause: e });
  }
}
