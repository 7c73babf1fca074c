import { encodePng } from './codec.js';
import { area, binarize, boundingBox, decodeMask, intersection, invert, iou, maskFromImage, maskToImage, resizeMask, subtract, union } from './mask.js';
import { maskFrom, maskRows } from './testing/shapes.js';

describe('masks', () => {
  const a = maskFrom(['......', '.###..', '.###..', '......']);
  const b = maskFrom(['......', '...##.', '...##.', '...##.']);

  it('area, bounding box, union, intersection, subtract, invert, iou', () => {
    expect(area(a)).toBe(6);
    expect(boundingBox(a)).toEqual({ x: 1, y: 1, width: 3, height: 2 });
    expect(boundingBox(b)).toEqual({ x: 3, y: 1, width: 2, height: 3 });
    expect(boundingBox(maskFrom(['...', '...']))).toBeNull();
    expect(maskRows(union(a, b))).toEqual(['......', '.####.', '.####.', '...##.']);
    expect(maskRows(intersection(a, b))).toEqual(['......', '...#..', '...#..', '......']);
    expect(maskRows(subtract(a, b))).toEqual(['......', '.##...', '.##...', '......']);
    expect(area(invert(a))).toBe(24 - 6);
    expect(iou(a, b)).toBeCloseTo(2 / 10);
  });

  it('refuses masks of different sizes', () => {
    expect(() => union(a, maskFrom(['##']))).toThrow(expect.objectContaining({ code: 'SIZE_MISMATCH' }));
  });

  it('resizes nearest: stays binary, scales areas, and 2x down then up restores a block-aligned mask', () => {
    const up = resizeMask(a, 12, 8);
    expect(new Set(up.data)).toEqual(new Set([0, 1]));
    expect(area(up)).toBe(4 * area(a));
    expect(boundingBox(up)).toEqual({ x: 2, y: 2, width: 6, height: 4 });
    expect(maskRows(resizeMask(up, 6, 4))).toEqual(maskRows(a));
    const odd = resizeMask(a, 7, 3); // any size, not just multiples
    expect([odd.width, odd.height, odd.data.length]).toEqual([7, 3, 21]);
  });

  it('binarizes a float map at a threshold', () => {
    expect(Array.from(binarize(new Float32Array([0.1, 0.5, 0.9, 0.49]), 2, 2, 0.5).data)).toEqual([0, 1, 1, 0]);
  });

  it('reads masks from gray, RGB and RGBA pictures by the documented rule', () => {
    expect(Array.from(maskFromImage({ width: 3, height: 1, data: new Uint8Array([0, 127, 255]) }).data)).toEqual([0, 0, 1]);
    // RGB: luma, so pure blue (luma 29) is unset and white is set
    expect(Array.from(maskFromImage({ width: 2, height: 1, data: new Uint8Array([0, 0, 255, 255, 255, 255]) }).data)).toEqual([0, 1]);
    // RGBA with varying alpha: alpha wins even though the colours are white everywhere
    const cut = { width: 2, height: 1, data: new Uint8Array([255, 255, 255, 0, 255, 255, 255, 200]) };
    expect(Array.from(maskFromImage(cut).data)).toEqual([0, 1]);
    // RGBA fully opaque: colour decides
    const opaque = { width: 2, height: 1, data: new Uint8Array([0, 0, 0, 255, 255, 255, 255, 255]) };
    expect(Array.from(maskFromImage(opaque).data)).toEqual([0, 1]);
    expect(Array.from(maskFromImage({ width: 3, height: 1, data: new Uint8Array([0, 100, 200]) }, 50).data)).toEqual([0, 1, 1]);
  });

  it('a mask saved with maskToImage decodes to the same mask', async () => {
    expect(maskRows(await decodeMask(await encodePng(maskToImage(b))))).toEqual(maskRows(b));
    const cutout = await encodePng({ width: 2, height: 1, data: new Uint8Array([9, 9, 9, 0, 9, 9, 9, 255]) });
    expect(Array.from((await decodeMask(cutout)).data)).toEqual([0, 1]);
  });
});
