/**
 * Training examples from the toy world (@dynasyn/toyworld): scene `index` of the seeded data set (held-out
 * identities excluded), rendered at the backbone's size, with a caption drawn for that scene: half of them
 * complete (every label named), half from the renderer's random templates (parts dropped, down to "a cat").
 * No flips: a mirrored scene would still be captioned truly, but the renderer already draws both facings.
 */
import { captionFor, createRng, datasetSceneSpec, renderScene } from '@dynasyn/toyworld';
import type { Example, ExampleSource } from './data.js';

/** HWC RGB bytes -> CHW floats in [-1, 1]. */
export function toChw(rgb: Uint8Array, size: number): Float32Array {
  const plane = size * size,
    out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let k = 0; k < 3; k++) out[k * plane + p] = rgb[p * 3 + k]! / 127.5 - 1;
  return out;
}

export function toyworldSource(size = 64): ExampleSource {
  const example = (seed: number, index: number): Example => {
    const spec = datasetSceneSpec(seed, index);
    const scene = renderScene(spec, { size });
    const rng = createRng(`backbone-caption/${seed}/${index}`);
    const caption = captionFor(spec, rng, { detail: rng.chance(0.5) ? 'full' : 'random' });
    const subjects = new Uint8Array(size * size);
    for (const m of scene.masks) for (let i = 0; i < m.length; i++) if (m[i]) subjects[i] = 1;
    return { rgb: toChw(scene.rgb, size), caption, subjects };
  };
  return {
    name: 'toyworld',
    size,
    description: `toy-world scenes (@dynasyn/toyworld's datasetSceneSpec: one or two subjects, held-out identities excluded), rendered at ${size} px, captions half complete, half random templates`,
    example: async (seed, index) => example(seed, index),
    captions: async (seed, count) =>
      Array.from({ length: count }, (_, i) => {
        const spec = datasetSceneSpec(seed, i);
        const rng = createRng(`backbone-caption/${seed}/${i}`);
        return captionFor(spec, rng, { detail: rng.chance(0.5) ? 'full' : 'random' });
      }),
  };
}
