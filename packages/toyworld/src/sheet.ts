/** Contact sheets: renders tiled into one image, for looking at the world (CLI `toyworld sheet`). */
import type { RenderedScene } from './render.js';

/** Tiles same-size renders `columns` across with a `gap` px border; returns RGB bytes and the sheet's size. */
export function contactSheet(scenes: RenderedScene[], columns: number, gap = 2): { rgb: Uint8Array; width: number; height: number } {
  if (!scenes.length) throw new RangeError('contactSheet: no scenes');
  const size = scenes[0]!.width;
  const rows = Math.ceil(scenes.length / columns);
  const width = columns * (size + gap) + gap;
  const height = rows * (size + gap) + gap;
  const rgb = new Uint8Array(width * height * 3).fill(255);
  scenes.forEach((scene, k) => {
    const ox = gap + (k % columns) * (size + gap);
    const oy = gap + Math.floor(k / columns) * (size + gap);
    for (let y = 0; y < size; y++) rgb.set(scene.rgb.subarray(y * size * 3, (y + 1) * size * 3), ((oy + y) * width + ox) * 3);
  });
  return { rgb, width, height };
}
