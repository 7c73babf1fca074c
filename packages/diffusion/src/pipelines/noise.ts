/**
 * The seeded noise of a sample, documented so that a seed reproduces an image exactly:
 *
 * - Image i of a batch has its own seed (`seeds[i]`, or `seed + i` when one seed is given) and its own
 *   GaussianRng stream, so an image does not depend on the batch it was drawn in.
 * - Each stream first yields that image's initial noise, C*h*w standard normals in row-major [C,h,w]
 *   order (text-to-image: latents = noise * scheduler.initNoiseSigma; image-to-image and inpainting: the
 *   noise added to the encoded image at the starting timestep), then, per denoising step that needs it
 *   (DDPM, DDIM with eta > 0), the next C*h*w values.
 */
import { GaussianRng } from '../rng.js';
import { DiffusionError } from '../errors.js';

export function seedsFor(batch: number, seed: number | readonly number[] | undefined): number[] {
  if (Array.isArray(seed)) {
    if (seed.length !== batch) throw new DiffusionError('BAD_ARGUMENT', `${seed.length} seeds for a batch of ${batch} images`);
    seed.forEach(checkSeed);
    return [...seed];
  }
  // no seed: a random one, still reported back so the image can be reproduced
  const base = seed === undefined ? Math.floor(Math.random() * 2 ** 31) : (seed as number);
  checkSeed(base);
  return Array.from({ length: batch }, (_, i) => base + i);
}

function checkSeed(s: number): void {
  if (!Number.isSafeInteger(s) || s < 0) throw new DiffusionError('BAD_ARGUMENT', `a seed must be a non-negative integer, got ${s}`);
}

/** One GaussianRng per image; `draw()` returns the next [B,C,h,w] block (each image's C*h*w in turn). */
export class BatchNoise {
  private readonly rngs: GaussianRng[];

  constructor(
    readonly seeds: readonly number[],
    private readonly perImage: number,
  ) {
    this.rngs = seeds.map((s) => new GaussianRng(s));
  }

  draw(): Float32Array {
    const out = new Float32Array(this.rngs.length * this.perImage);
    this.rngs.forEach((rng, i) => out.set(rng.fill(this.perImage), i * this.perImage));
    return out;
  }
}
