import { crop, fitCover, fitToSquare, flipHorizontal, resizeImage, transformPoint } from './geometry.js';
import { area, boundingBox, iou } from './mask.js';
import { fillRect, gradient, maskFrom, maskRows, solid } from './testing/shapes.js';
import type { Mask, RgbImage } from './types.js';

const redMask = (img: RgbImage): Mask => {
  const data = new Uint8Array(img.width * img.height);
  for (let i = 0; i < data.length; i++) data[i] = img.data[i * 3]! > 160 && img.data[i * 3 + 1]! < 100 ? 1 : 0;
  return { width: img.width, height: img.height, data };
};

describe('fitToSquare', () => {
  // 200x100 gray picture with a red 10x10 block at (120..129, 40..49), and its mask
  const image = fillRect(solid(200, 100, [90, 90, 90]), 120, 40, 10, 10, [255, 0, 0]);
  const mask = redMask(image);

  it('cover-crops the centre and maps a known pixel where the transform says', async () => {
    const { image: out, masks, transform } = await fitToSquare(image, [mask], 64);
    expect([out.width, out.height]).toEqual([64, 64]);
    expect(transform.crop).toEqual({ x: 50, y: 0, width: 100, height: 100 });
    expect(transform.scaleX).toBeCloseTo(0.64);
    const p = transformPoint(transform, 125, 45); // block centre
    expect(p.x).toBeCloseTo(48);
    expect(p.y).toBeCloseTo(28.8);
    const at = (Math.floor(p.y) * 64 + Math.floor(p.x)) * 3;
    expect(Array.from(out.data.subarray(at, at + 3))).toEqual([255, 0, 0]);
    // the mask went through the same transform: it covers the red pixels of the output image
    expect(masks[0]!.data[Math.floor(p.y) * 64 + Math.floor(p.x)]).toBe(1);
    expect(iou(masks[0]!, redMask(out))).toBeGreaterThan(0.7);
    expect(area(masks[0]!)).toBeGreaterThanOrEqual(36);
    expect(area(masks[0]!)).toBeLessThanOrEqual(49);
  });

  it('crops the long side of a portrait image and upsamples small images', async () => {
    const tall = fillRect(solid(10, 30, [0, 0, 0]), 0, 10, 10, 10, [255, 0, 0]); // red middle third
    const { image: out, masks, transform } = await fitCover(tall, [redMask(tall)], 40, 40);
    expect(transform.crop).toEqual({ x: 0, y: 10, width: 10, height: 10 });
    expect(area(masks[0]!)).toBe(1600);
    expect(out.data.every((v, i) => (i % 3 === 0 ? v === 255 : v === 0))).toBe(true);
  });

  it('refuses masks of another size', async () => {
    await expect(fitToSquare(image, [maskFrom(['#'])], 64)).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
  });
});

describe('resize, crop, flip', () => {
  it('resizes to exactly the asked size and keeps a flat colour flat', async () => {
    const out = await resizeImage(solid(33, 17, [10, 200, 30]), 50, 8);
    expect([out.width, out.height]).toEqual([50, 8]);
    expect(out.data.every((v, i) => v === [10, 200, 30][i % 3])).toBe(true);
  });

  it('crops a box and refuses one outside the image', () => {
    const g = gradient(10, 10);
    const c = crop(g, { x: 2, y: 3, width: 4, height: 2 });
    expect(Array.from(c.data.subarray(0, 3))).toEqual(Array.from(g.data.subarray((3 * 10 + 2) * 3, (3 * 10 + 2) * 3 + 3)));
    expect(() => crop(g, { x: 8, y: 0, width: 4, height: 2 })).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });

  it('flips images and masks alike, and twice is the identity', () => {
    const m = maskFrom(['##...', '#....']);
    expect(maskRows(flipHorizontal(m))).toEqual(['...##', '....#']);
    const img = fillRect(solid(5, 2, [0, 0, 0]), 0, 0, 2, 1, [255, 0, 0]);
    expect(boundingBox(redMask(flipHorizontal(img)))).toEqual(boundingBox(flipHorizontal(maskFrom(['##...', '.....']))));
    const g = gradient(7, 3);
    expect(Buffer.from(flipHorizontal(flipHorizontal(g)).data).equals(Buffer.from(g.data))).toBe(true);
  });
});
