/**
 * Where training images come from: a source draws example `index` of a seeded stream, so batch `step` is
 * examples [step * B, (step + 1) * B) and a run resumes without saving any generator state.
 */
import { dilate } from '@dynasyn/imaging';

/** One training example: an RGB image [3, S, S] in [-1, 1] (channel-major) and its caption. */
export interface Example {
  rgb: Float32Array;
  caption: string;
  /** Where the subjects are (1) and the background (0), row-major [S, S], when the source knows. */
  subjects?: Uint8Array;
}

export interface ExampleSource {
  /** Image side in pixels. */
  readonly size: number;
  /** The CLI's `--source` value that gives this stream (toyworld, synthetic); none for a source made in code. */
  readonly name?: string;
  /** What the model card says the data was. */
  readonly description: string;
  /** Example `index` of the stream keyed by `seed`; the same arguments give the same example. */
  example(seed: number, index: number): Promise<Example>;
  /** Captions typical of the stream (what the tokenizer learns from). */
  captions(seed: number, count: number): Promise<string[]>;
}

/** Examples [step * batch, (step + 1) * batch) of the stream. */
export async function batchAt(source: ExampleSource, seed: number, step: number, batch: number): Promise<Example[]> {
  const out: Example[] = [];
  for (let i = 0; i < batch; i++) out.push(await source.example(seed, step * batch + i));
  return out;
}

/** Images of a batch as one [B, 3, S, S] array. */
export function stackImages(examples: Example[]): Float32Array {
  const n = examples[0]!.rgb.length;
  const out = new Float32Array(examples.length * n);
  examples.forEach((e, i) => out.set(e.rgb, i * n));
  return out;
}

/**
 * Per-pixel reconstruction weights of a batch, [B, 1, S, S]: `subjectWeight` on the subjects and the pixel
 * around them (the outline carries the silhouette), 1 elsewhere. A subject of 12 px is 4% of a 64 px scene,
 * so plain MSE spends 96% of its gradient on the background; weighting the subjects keeps their colours.
 * Examples without `subjects` weigh 1 everywhere.
 */
export function subjectWeights(examples: Example[], size: number, subjectWeight: number): Float32Array {
  const plane = size * size;
  const out = new Float32Array(examples.length * plane).fill(1);
  examples.forEach((e, b) => {
    if (!e.subjects) return;
    if (e.subjects.length !== plane) throw new Error(`example ${b}: subjects mask has ${e.subjects.length} values, expected ${plane}`);
    const near = dilate({ width: size, height: size, data: e.subjects }, 1, { shape: 'square' }).data;
    for (let p = 0; p < plane; p++) if (near[p]) out[b * plane + p] = subjectWeight;
  });
  return out;
}

/**
 * The same weights averaged over each latent cell ([B, 1, S/f, S/f] for a VAE of scale factor f = S / latentSize): a
 * cell weighs 1 + (subjectWeight - 1) x the share of its f x f pixels on a subject or the pixel around it. The
 * subject-weighted diffusion loss: the epsilon MSE of a cell that draws a subject's silhouette counts
 * `subjectWeight` times a background cell's.
 */
export function latentSubjectWeights(examples: Example[], size: number, latentSize: number, subjectWeight: number): Float32Array {
  const f = size / latentSize;
  if (!Number.isInteger(f) || f < 1) throw new Error(`image size ${size} is not a multiple of the latent size ${latentSize}`);
  const full = subjectWeights(examples, size, subjectWeight);
  const plane = latentSize * latentSize;
  const out = new Float32Array(examples.length * plane);
  for (let b = 0; b < examples.length; b++)
    for (let y = 0; y < latentSize; y++)
      for (let x = 0; x < latentSize; x++) {
        let sum = 0;
        for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) sum += full[b * size * size + (y * f + dy) * size + x * f + dx]!;
        out[b * plane + y * latentSize + x] = sum / (f * f);
      }
  return out;
}
