/** `dynasyn sample`: one image from a bundle (text-to-image, or image-to-image with --image/--strength). */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DiffusionPipeline, type SchedulerKind } from '@dynasyn/diffusion';
import { decode, encodePng, fitToSquare } from '@dynasyn/imaging';
import { CliError } from './errors.js';
import { createProgress } from '../progress.js';

export interface SampleArgs {
  backbone: string;
  prompt: string;
  negative: string;
  steps: number;
  guidance: number;
  seed?: number;
  scheduler: SchedulerKind;
  out: string;
  image?: string;
  strength?: number;
  threads?: number;
}

export async function sample(a: SampleArgs): Promise<void> {
  if (a.strength !== undefined && a.image === undefined) throw new CliError('--strength needs --image (image-to-image)');
  const pipeline = await DiffusionPipeline.create(a.backbone, a.threads ? { intraOpNumThreads: a.threads } : {});
  const progress = createProgress(a.image ? 'img2img' : 'sample');
  try {
    const common = {
      prompt: a.prompt,
      negativePrompt: a.negative,
      steps: a.steps,
      guidance: a.guidance,
      scheduler: a.scheduler,
      ...(a.seed !== undefined ? { seed: a.seed } : {}),
      onProgress: (step: number, total: number) => progress.update(step, total),
    };
    let result;
    if (a.image) {
      const size = pipeline.bundle.sampleSize;
      const bytes = await readFile(a.image).catch((e: NodeJS.ErrnoException) => {
        throw new CliError(`cannot read image ${a.image}: ${e.code ?? e.message}`);
      });
      const decoded = await decode(bytes).catch((e: Error) => {
        throw new CliError(`cannot decode image ${a.image}: ${e.message}`);
      });
      const { image } = await fitToSquare(decoded, [], size);
      result = await pipeline.imageToImage({ ...common, image, strength: a.strength ?? 0.8 });
    } else {
      result = await pipeline.textToImage(common);
    }
    progress.stop();
    const img = result.images[0]!;
    await writeFile(a.out, await encodePng(img)).catch((e: NodeJS.ErrnoException) => {
      throw new CliError(`cannot write ${a.out}: ${e.code ?? e.message}`);
    });
    process.stdout.write(`${path.resolve(a.out)} (${img.width}x${img.height}, seed ${result.seeds[0]})\n`);
  } finally {
    progress.stop();
    await pipeline.release();
  }
}
