/**
 * The demo (`npm run demo`): a tiny random-weight bundle and the example input (a red ball and a blue box)
 * under `out/demo/`, personalized with the `tiny` preset in a few minutes on two cores. The bundle's
 * weights are random, so its images are noise by nature: the report's losses and attention maps are the
 * signal. Runnable on its own (`node packages/dynasyn/dist/example/demo.js [DIR]`, plain progress lines);
 * the CLI's `dynasyn demo` runs the same with progress bars.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createTinyBundle } from '@dynasyn/diffusion';
import { personalize, type PersonalizeResult } from '../personalize.js';
import { resolveOptions } from '../presets.js';
import type { ProgressListener } from '../types.js';
import { createExampleInput } from './example-input.js';

export interface DemoOptions {
  /** Root of the demo's files; default `out/demo` under the working directory. */
  dir?: string;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

/** Creates the bundle and example (once), then runs (or resumes) the personalization into `<dir>/run`. */
export async function runDemo(o: DemoOptions = {}): Promise<PersonalizeResult & { bundleDir: string }> {
  const dir = resolve(o.dir ?? join('out', 'demo'));
  const bundleDir = join(dir, 'tiny-bundle');
  if (!existsSync(join(bundleDir, 'model_index.json'))) await createTinyBundle(bundleDir, { seed: 0 });
  const files = await createExampleInput(join(dir, 'example'));
  const result = await personalize({
    backbone: bundleDir,
    input: files,
    options: resolveOptions('tiny'),
    outDir: join(dir, 'run'),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  return { ...result, bundleDir };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const t0 = performance.now();
  const r = await runDemo({
    ...(process.argv[2] ? { dir: process.argv[2] } : {}),
    onProgress: (e) => process.stderr.write(`${e.stage}${e.phase ? ` phase ${e.phase}` : ''}: ${e.step}/${e.total}${e.message ? ` ${e.message}` : ''}\n`),
  });
  process.stdout.write(
    `report: ${r.reportPath}\n(${((performance.now() - t0) / 1000).toFixed(0)} s; tiny random-weight bundle: images are noise by nature, see the losses and attention maps)\n`,
  );
}
