/** Dense float32 tensors on the host (latents, images, embeddings, noise predictions), row-major. */
export interface FloatTensor {
  dims: number[];
  data: Float32Array;
}

export const size = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

export function floatTensor(dims: number[], data?: Float32Array): FloatTensor {
  const n = size(dims);
  if (data && data.length !== n) throw new RangeError(`tensor data has ${data.length} elements, dims [${dims}] need ${n}`);
  return { dims: [...dims], data: data ?? new Float32Array(n) };
}
