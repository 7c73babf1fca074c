import { alphaComposite, blend, pasteSubject } from './composite.js';
import { area, boundingBox } from './mask.js';
import { disc, solid } from './testing/shapes.js';

describe('pasteSubject', () => {
  // a red disc (radius 10) on gray, at (30, 20) in a 60x40 source
  const source = solid(60, 40, [128, 128, 128]);
  const mask = disc(60, 40, 30, 20, 10);
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i]) source.data.set([255, 0, 0], i * 3);
  const target = solid(100, 100, [0, 0, 255]);

  it('scales the subject into the box (aspect kept) and reports where it went', async () => {
    const { image, pastedMask, placedBox } = await pasteSubject(target, source, mask, { x: 10, y: 50, width: 40, height: 30 });
    expect(placedBox).toEqual({ x: 15, y: 50, width: 30, height: 30 }); // 21x21 disc scaled by 30/21, centred
    const bb = boundingBox(pastedMask)!;
    expect(bb.x).toBeGreaterThanOrEqual(15);
    expect(bb.x + bb.width).toBeLessThanOrEqual(45);
    expect(area(pastedMask)).toBeGreaterThan(0.85 * Math.PI * 15 * 15);
    expect(area(pastedMask)).toBeLessThan(1.15 * Math.PI * 15 * 15);
    const centre = (65 * 100 + 30) * 3;
    expect(Array.from(image.data.subarray(centre, centre + 3))).toEqual([255, 0, 0]);
    // away from the subject the target is untouched; the source's gray background never bleeds in, not even
    // at the soft edge (neither the red subject nor the blue target has any green)
    expect(Array.from(image.data.subarray(0, 3))).toEqual([0, 0, 255]);
    let maxGreen = 0;
    for (let i = 0; i < 100 * 100; i++) maxGreen = Math.max(maxGreen, image.data[i * 3 + 1]!);
    expect(maxGreen).toBeLessThan(8);
  });

  it("'fill' stretches to the box, and a box past the edge is clipped", async () => {
    const { pastedMask, placedBox } = await pasteSubject(target, source, mask, { x: 80, y: 0, width: 40, height: 20 }, { fit: 'fill' });
    expect(placedBox).toEqual({ x: 80, y: 0, width: 40, height: 20 });
    const bb = boundingBox(pastedMask)!;
    expect(bb.x + bb.width).toBe(100);
    expect(bb.height).toBeGreaterThanOrEqual(19);
  });

  it('refuses an empty mask', async () => {
    const empty = { width: 60, height: 40, data: new Uint8Array(2400) };
    await expect(pasteSubject(target, source, empty, { x: 0, y: 0, width: 10, height: 10 })).rejects.toMatchObject({ code: 'EMPTY_MASK' });
  });
});

describe('alphaComposite / blend', () => {
  const black = solid(2, 1, [0, 0, 0]);
  const white = solid(2, 1, [255, 255, 255]);

  it('uses a mask, a float map, or the top image alpha', () => {
    expect(Array.from(alphaComposite(black, white, { width: 2, height: 1, data: new Uint8Array([0, 1]) }).data)).toEqual([0, 0, 0, 255, 255, 255]);
    expect(Array.from(alphaComposite(black, white, new Float32Array([0.5, 2])).data)).toEqual([128, 128, 128, 255, 255, 255]);
    const rgba = { width: 2, height: 1, data: new Uint8Array([255, 0, 0, 255, 255, 0, 0, 0]) };
    expect(Array.from(alphaComposite(white, rgba).data)).toEqual([255, 0, 0, 255, 255, 255]);
    expect(() => alphaComposite(black, white)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(() => alphaComposite(black, solid(1, 1, [0, 0, 0]), new Float32Array(1))).toThrow(expect.objectContaining({ code: 'SIZE_MISMATCH' }));
  });

  it('blends linearly', () => {
    expect(Array.from(blend(black, white, 0.25).data)).toEqual([64, 64, 64, 64, 64, 64]);
    expect(() => blend(black, white, 1.5)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });
});
