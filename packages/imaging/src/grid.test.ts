import { imageGrid } from './grid.js';
import { solid } from './testing/shapes.js';

describe('imageGrid', () => {
  const px = (img: { width: number; data: Uint8Array }, x: number, y: number) =>
    Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

  it('lays images in rows, padded, smaller ones centred in their cell', () => {
    const red = solid(4, 4, [255, 0, 0]),
      green = solid(4, 4, [0, 255, 0]),
      blue = solid(2, 2, [0, 0, 255]);
    const g = imageGrid([red, green, blue], 2, { pad: 1, background: [7, 7, 7] });
    expect([g.width, g.height]).toEqual([2 * 4 + 3, 2 * 4 + 3]);
    expect(px(g, 0, 0)).toEqual([7, 7, 7]);
    expect(px(g, 1, 1)).toEqual([255, 0, 0]);
    expect(px(g, 6, 4)).toEqual([0, 255, 0]);
    expect(px(g, 5, 2)).toEqual([7, 7, 7]); // the gap between cells
    expect(px(g, 1 + 1, 6 + 1)).toEqual([0, 0, 255]); // second row, centred 2x2 in a 4x4 cell
    expect(px(g, 1, 6)).toEqual([7, 7, 7]);
    expect(px(g, 8, 8)).toEqual([7, 7, 7]); // the empty fourth cell
  });

  it('refuses no images or a bad column count', () => {
    expect(() => imageGrid([], 2)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(() => imageGrid([solid(1, 1, [0, 0, 0])], 0)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });
});
