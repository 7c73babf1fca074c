/** Test helpers: a source that repeats one batch, and a tiny starting bundle. */
import { join } from 'node:path';
import { createInitialBundle } from './bundle-io.js';
import { toyBundleConfig } from './config.js';
import type { ExampleSource } from './data.js';
import { syntheticShapesSource } from './synthetic-source.js';
import { learnCaptionTokenizer, vocabSize } from './tokenizer.js';

/** Every index gives one of the first `n` examples of `source`: a fixed batch when the batch size is n. */
export function repeating(source: ExampleSource, n: number): ExampleSource {
  return { ...source, example: (seed, index) => source.example(seed, index % n) };
}

/** The 'test' preset's starting bundle (16 px synthetic shapes) in `dir`/init; returns its source. */
export async function tinyStartingBundle(dir: string, seed = 0): Promise<{ bundleDir: string; source: ExampleSource }> {
  const source = syntheticShapesSource(16);
  const tokenizer = learnCaptionTokenizer(await source.captions(seed, 200));
  const bundleDir = join(dir, 'init');
  await createInitialBundle(bundleDir, toyBundleConfig(vocabSize(tokenizer), 'test'), tokenizer, seed);
  return { bundleDir, source };
}
