/**
 * Where training images come from: a source draws example `index` of a seeded stream, so batch `step` is
 * examples [step * B, (step + 1) * B) and a run resumes without saving any generator state.
 */

/** One training example: an RGB image [3, S, S] in [-1, 1] (channel-major) and its caption. */
export interface Example {
  rgb: Float32Array;
  caption: string;
}

export interface ExampleSource {
  /** Image side in pixels. */
  readonly size: number;
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
