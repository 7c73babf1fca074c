/** A synthetic two-subject input for tests of the trainer (not part of the build). */
import type { PersonalizationInput, RgbImage } from '../types.js';

/** 128x128: a red square (subject 0, top left) and a blue disc (subject 1, bottom right) on grey. */
export function twoSubjectInput(size = 128): PersonalizationInput {
  const image: RgbImage = { width: size, height: size, data: new Uint8Array(size * size * 3).fill(128) };
  const m0 = new Uint8Array(size * size),
    m1 = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      if (x >= size * 0.1 && x < size * 0.45 && y >= size * 0.15 && y < size * 0.5) {
        m0[p] = 1;
        image.data.set([220, 40, 40], p * 3);
      } else if ((x - size * 0.7) ** 2 + (y - size * 0.7) ** 2 < (size * 0.2) ** 2) {
        m1[p] = 1;
        image.data.set([40, 60, 220], p * 3);
      }
    }
  }
  return {
    image,
    subjects: [
      { mask: { width: size, height: size, data: m0 }, classWord: 'panda' },
      { mask: { width: size, height: size, data: m1 }, classWord: 'bowl' },
    ],
  };
}
