/**
 * The augmented set on disk, so `dynasyn augment` can run alone and training can load its result:
 * `aug-NNN.png` (image), `aug-NNN-mask-K.png` (mask of the example's K-th subject, black/white) and
 * `augmented.json` (prompts, category, subjects, and the template and seeds when known), written last
 * so a folder with an `augmented.json` is complete. The same format holds a composed set (before GSA),
 * marked `"stage": "composed"`: `loadAugmented` refuses it (training must not see pre-GSA images) and
 * `loadComposed` accepts only it. A manifest without `stage` is a finished set.
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeMask, maskToImage, readImage, writePng } from '@dynasyn/imaging';
import type { AugmentedExample } from '../types.js';
import type { AugmentedSample, ComposedSample } from './augment.js';
import { AugmentationError } from './errors.js';

export const AUGMENTED_MANIFEST = 'augmented.json';
const VERSION = 1;

/** What a saved set holds: examples after GSA (`augmented`, ready for training) or before it (`composed`). */
export type AugmentedSetStage = 'augmented' | 'composed';

interface ManifestEntry {
  image: string;
  masks: string[];
  prompt: string;
  classPrompt: string;
  nounPrompt: string;
  subjects: number[];
  category: AugmentedExample['category'];
  template?: string;
  seeds?: AugmentedSample['seeds'];
  pasteOrder?: number[];
}

/** An example as loaded: the contract's fields, and what reproduces it when the set recorded it. */
export type LoadedAugmentedExample = AugmentedExample & Partial<Pick<AugmentedSample, 'template' | 'seeds' | 'pasteOrder'>>;

const pad = (i: number): string => String(i).padStart(3, '0');

export async function saveAugmented(dir: string, examples: readonly LoadedAugmentedExample[], stage: AugmentedSetStage = 'augmented'): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const entries: ManifestEntry[] = [];
  for (const [i, e] of examples.entries()) {
    if (e.masks.length !== e.subjects.length)
      throw new AugmentationError('BAD_ARGUMENT', `augmented example ${i} has ${e.masks.length} masks for ${e.subjects.length} subjects`);
    const image = `aug-${pad(i)}.png`;
    await writePng(path.join(dir, image), e.image);
    const masks = await Promise.all(
      e.masks.map(async (m, k) => {
        const name = `aug-${pad(i)}-mask-${k}.png`;
        await writePng(path.join(dir, name), maskToImage(m));
        return name;
      }),
    );
    entries.push({
      image,
      masks,
      prompt: e.prompt,
      classPrompt: e.classPrompt,
      nounPrompt: e.nounPrompt,
      subjects: [...e.subjects],
      category: e.category,
      ...(e.template !== undefined ? { template: e.template } : {}),
      ...(e.seeds ? { seeds: e.seeds } : {}),
      ...(e.pasteOrder ? { pasteOrder: e.pasteOrder } : {}),
    });
  }
  const file = path.join(dir, AUGMENTED_MANIFEST);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify({ version: VERSION, ...(stage === 'composed' ? { stage } : {}), examples: entries }, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
  return file;
}

/** A composed set (before GSA) as `saveAugmented(dir, examples, 'composed')` wrote it, for `applyGsa`. */
export async function loadComposed(dir: string): Promise<ComposedSample[]> {
  const set = await loadSet(dir, 'composed');
  return set.map((e, i) => {
    if (e.template === undefined || e.seeds === undefined || e.pasteOrder === undefined) {
      throw new AugmentationError(
        'BAD_AUGMENTED_SET',
        `${path.join(dir, AUGMENTED_MANIFEST)} examples[${i}] lacks its template, seeds or paste order (GSA needs its seed)`,
      );
    }
    return { ...e, template: e.template, seeds: e.seeds, pasteOrder: e.pasteOrder };
  });
}

/** A finished augmented set (after GSA), for training; a composed set is refused. */
export async function loadAugmented(dir: string): Promise<LoadedAugmentedExample[]> {
  return loadSet(dir, 'augmented');
}

async function loadSet(dir: string, want: AugmentedSetStage): Promise<LoadedAugmentedExample[]> {
  const file = path.join(dir, AUGMENTED_MANIFEST);
  if (!fs.existsSync(file)) throw new AugmentationError('BAD_AUGMENTED_SET', `${file} does not exist (run \`dynasyn augment\` first)`);
  let manifest: { version?: unknown; stage?: unknown; examples?: unknown };
  try {
    manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof manifest;
  } catch (e) {
    throw new AugmentationError('BAD_AUGMENTED_SET', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (manifest.version !== VERSION) throw new AugmentationError('BAD_AUGMENTED_SET', `${file}: version ${String(manifest.version)} is not ${VERSION}`);
  const stage = manifest.stage ?? 'augmented';
  if (stage !== 'augmented' && stage !== 'composed')
    throw new AugmentationError('BAD_AUGMENTED_SET', `${file}: "stage" must be "augmented" or "composed", got ${JSON.stringify(manifest.stage)}`);
  if (stage !== want) {
    throw new AugmentationError(
      'BAD_AUGMENTED_SET',
      want === 'augmented'
        ? `${file} holds a composed set that has not been through GSA yet; run GSA on it (the gsa stage) before training`
        : `${file} holds a finished augmented set, not a composed one awaiting GSA`,
    );
  }
  if (!Array.isArray(manifest.examples)) throw new AugmentationError('BAD_AUGMENTED_SET', `${file}: "examples" must be an array`);
  const out: LoadedAugmentedExample[] = [];
  for (const [i, raw] of (manifest.examples as unknown[]).entries()) {
    const e = checkEntry(raw, `${file} examples[${i}]`);
    const image = await readFile(dir, e.image, (p) => readImage(p));
    const masks = await Promise.all(e.masks.map((m) => readFile(dir, m, async (p) => decodeMask(new Uint8Array(fs.readFileSync(p))))));
    masks.forEach((m, k) => {
      if (m.width !== image.width || m.height !== image.height)
        throw new AugmentationError('BAD_AUGMENTED_SET', `${e.masks[k]} is ${m.width}x${m.height}; its image ${e.image} is ${image.width}x${image.height}`);
    });
    out.push({
      image,
      masks,
      prompt: e.prompt,
      classPrompt: e.classPrompt,
      nounPrompt: e.nounPrompt,
      subjects: e.subjects,
      category: e.category,
      ...(e.template !== undefined ? { template: e.template } : {}),
      ...(e.seeds ? { seeds: e.seeds } : {}),
      ...(e.pasteOrder ? { pasteOrder: e.pasteOrder } : {}),
    });
  }
  return out;
}

async function readFile<T>(dir: string, name: string, read: (p: string) => Promise<T>): Promise<T> {
  const p = path.join(dir, name);
  if (path.basename(name) !== name)
    throw new AugmentationError('BAD_AUGMENTED_SET', `file name ${JSON.stringify(name)} in ${AUGMENTED_MANIFEST} must be a plain name in the set's folder`);
  if (!fs.existsSync(p)) throw new AugmentationError('BAD_AUGMENTED_SET', `${p}, named in ${AUGMENTED_MANIFEST}, does not exist`);
  try {
    return await read(p);
  } catch (e) {
    throw new AugmentationError('BAD_AUGMENTED_SET', `${p} could not be read: ${(e as Error).message}`, { cause: e });
  }
}

function checkEntry(raw: unknown, where: string): ManifestEntry {
  const e = raw as Partial<ManifestEntry> | null;
  const bad = (field: string, want: string): never => {
    throw new AugmentationError('BAD_AUGMENTED_SET', `${where}.${field} must be ${want}`);
  };
  if (!e || typeof e !== 'object') return bad('', 'an object');
  for (const f of ['image', 'prompt', 'classPrompt', 'nounPrompt'] as const) if (typeof e[f] !== 'string') bad(f, 'a string');
  if (!Array.isArray(e.masks) || !e.masks.every((m) => typeof m === 'string')) bad('masks', 'an array of file names');
  if (!Array.isArray(e.subjects) || !e.subjects.every((s) => Number.isInteger(s) && s >= 0)) bad('subjects', 'an array of subject indices');
  if (e.masks!.length !== e.subjects!.length) bad('masks', `one file per subject (${e.subjects!.length})`);
  if (!['plain', 'action', 'interaction'].includes(e.category as string)) bad('category', 'plain, action or interaction');
  if (e.template !== undefined && typeof e.template !== 'string') bad('template', 'a string');
  const seed = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
  if (e.seeds !== undefined && !(e.seeds && typeof e.seeds === 'object' && seed(e.seeds.draft) && seed(e.seeds.inpaint) && seed(e.seeds.gsa)))
    bad('seeds', '{draft, inpaint, gsa} non-negative integers');
  if (e.pasteOrder !== undefined && !(Array.isArray(e.pasteOrder) && e.pasteOrder.every(seed))) bad('pasteOrder', 'an array of indices');
  return e as ManifestEntry;
}
