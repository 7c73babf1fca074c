/**
 * Files on disk: one rendered scene as a directory (`toyworld render`), or a data set of N scenes
 * (`toyworld dataset`): images/, masks/ and an index.jsonl, one JSON line per scene (format in the README).
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ToyworldError } from './errors.js';
import { encodeMaskPng, encodePng } from './png.js';
import { renderScene, type RenderedScene, type SceneLabels } from './render.js';
import { datasetSceneSpec, type SampleOptions } from './sample.js';
import type { SceneSpec } from './spec.js';

/** Format version of index.jsonl lines and dataset.json. */
export const DATASET_FORMAT = 1;

/** One line of index.jsonl. Paths are relative to the data set's directory. */
export interface DatasetEntry {
  id: string;
  image: string;
  /** One grayscale PNG per subject, in spec order: 255 where the subject is visible, else 0. */
  masks: string[];
  captions: string[];
  labels: SceneLabels;
  spec: SceneSpec;
}

/** Writes image.png, mask-<i>.png, labels.json, captions.txt (one per line) and spec.json into `dir`. */
export function writeSceneFiles(scene: RenderedScene, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: Array<[string, Buffer | string]> = [
    ['image.png', encodePng(scene.rgb, scene.width, scene.height, 3)],
    ...scene.masks.map((m, i): [string, Buffer] => [`mask-${i}.png`, encodeMaskPng(m, scene.width, scene.height)]),
    ['labels.json', `${JSON.stringify(scene.labels, null, 2)}\n`],
    ['captions.txt', `${scene.captions.join('\n')}\n`],
    ['spec.json', `${JSON.stringify(scene.spec, null, 2)}\n`],
  ];
  for (const [name, data] of files) writeFileSync(join(dir, name), data);
  return files.map(([name]) => name);
}

export interface DatasetOptions extends Pick<SampleOptions, 'heldOut' | 'subjects'> {
  /** Number of scenes. */
  count: number;
  /** Seed of the data set: scene i is datasetSceneSpec(seed, i, options). */
  seed: number | string;
  /** Output directory (created). */
  out: string;
  /** Image side in pixels (default 64). */
  size?: number;
  /** Called after each scene with the number done. */
  onProgress?: (done: number) => void;
}

/** Renders and writes a data set; returns the path of its index.jsonl. */
export function writeDataset(options: DatasetOptions): string {
  const { count, seed, out, size = 64 } = options;
  if (!Number.isInteger(count) || count < 1) throw new ToyworldError('BAD_ARGUMENT', `count must be a positive integer; got ${count}`);
  const sample: SampleOptions = { heldOut: options.heldOut ?? 'exclude', ...(options.subjects ? { subjects: options.subjects } : {}) };
  mkdirSync(join(out, 'images'), { recursive: true });
  mkdirSync(join(out, 'masks'), { recursive: true });
  const digits = Math.max(6, String(count - 1).length);
  const indexPath = join(out, 'index.jsonl');
  const fd = openSync(indexPath, 'w');
  try {
    for (let i = 0; i < count; i++) {
      const id = String(i).padStart(digits, '0');
      const spec = datasetSceneSpec(seed, i, sample);
      const scene = renderScene(spec, { size });
      const entry: DatasetEntry = {
        id,
        image: `images/${id}.png`,
        masks: scene.masks.map((_, k) => `masks/${id}-${k}.png`),
        captions: scene.captions,
        labels: scene.labels,
        spec: scene.spec,
      };
      writeFileSync(join(out, entry.image), encodePng(scene.rgb, size, size, 3));
      scene.masks.forEach((m, k) => writeFileSync(join(out, entry.masks[k]!), encodeMaskPng(m, size, size)));
      writeSync(fd, `${JSON.stringify(entry)}\n`);
      options.onProgress?.(i + 1);
    }
  } finally {
    closeSync(fd);
  }
  const meta = { format: DATASET_FORMAT, count, seed, size, heldOut: sample.heldOut, subjects: options.subjects ?? 'mixed' };
  writeFileSync(join(out, 'dataset.json'), `${JSON.stringify(meta, null, 2)}\n`);
  return indexPath;
}
