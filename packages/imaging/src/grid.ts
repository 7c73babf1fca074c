import { ImagingError } from './errors.js';
import { assertRgb, type RgbImage } from './types.js';

export interface GridOptions {
  /** Pixels between cells and around the grid. Default 2. */
  pad?: number;
  /** Colour of the padding and of empty space, [r,g,b]. Default white. */
  background?: readonly [number, number, number];
}

/**
 * Lays images out in rows of `cols`, in order. Every cell is as large as the largest image; smaller images
 * are centred in their cell.
 */
export function imageGrid(images: readonly RgbImage[], cols: number, opts: GridOptions = {}): RgbImage {
  if (images.length === 0) throw new ImagingError('BAD_ARGUMENT', 'imageGrid needs at least one image');
  if (!Number.isInteger(cols) || cols < 1) throw new ImagingError('BAD_ARGUMENT', `cols must be a positive integer, got ${cols}`);
  const pad = opts.pad ?? 2;
  if (!Number.isInteger(pad) || pad < 0) throw new ImagingError('BAD_ARGUMENT', `pad must be a non-negative integer, got ${pad}`);
  images.forEach((im, i) => assertRgb(im, `grid image ${i}`));
  const [br, bg, bb] = opts.background ?? [255, 255, 255];
  const cellW = Math.max(...images.map((im) => im.width));
  const cellH = Math.max(...images.map((im) => im.height));
  const c = Math.min(cols, images.length);
  const rows = Math.ceil(images.length / c);
  const width = c * cellW + (c + 1) * pad;
  const height = rows * cellH + (rows + 1) * pad;
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    out[i * 3] = br;
    out[i * 3 + 1] = bg;
    out[i * 3 + 2] = bb;
  }
  images.forEach((im, i) => {
    const x0 = pad + (i % c) * (cellW + pad) + Math.floor((cellW - im.width) / 2);
    const y0 = pad + Math.floor(i / c) * (cellH + pad) + Math.floor((cellH - im.height) / 2);
    for (let y = 0; y < im.height; y++) {
      out.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), ((y0 + y) * width + x0) * 3);
    }
  });
  return { width, height, data: out };
}
