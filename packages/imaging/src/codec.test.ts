import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decode, decodeRgba, encodeJpeg, encodePng, readImage, sniffImageType, writePng } from './codec.js';
import { ImagingError } from './errors.js';
import { fillRect, gradient, pngHeaderClaiming, solid } from './testing/shapes.js';

const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof ImagingError ? e.code : String(e)),
  );

describe('decode / encode', () => {
  it('PNG round trip is exact', async () => {
    const img = fillRect(gradient(37, 23), 5, 5, 7, 3, [255, 0, 10]);
    const png = await encodePng(img);
    expect(sniffImageType(png)).toBe('png');
    const back = await decode(png);
    expect(back.width).toBe(37);
    expect(back.height).toBe(23);
    expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
  });

  it('JPEG round trip stays close on a smooth image', async () => {
    const img = gradient(64, 48);
    const jpg = await encodeJpeg(img, { quality: 95 });
    expect(sniffImageType(jpg)).toBe('jpeg');
    const back = await decode(jpg);
    let maxErr = 0;
    for (let i = 0; i < img.data.length; i++) maxErr = Math.max(maxErr, Math.abs(back.data[i]! - img.data[i]!));
    expect(maxErr).toBeLessThan(12);
  });

  it('decodes WebP', async () => {
    const img = solid(8, 8, [200, 100, 50]);
    const webp = await sharp(img.data, { raw: { width: 8, height: 8, channels: 3 } })
      .webp({ lossless: true })
      .toBuffer();
    expect(sniffImageType(webp)).toBe('webp');
    expect(Array.from((await decode(webp)).data.subarray(0, 3))).toEqual([200, 100, 50]);
  });

  it('composites transparency on white, and decodeRgba keeps alpha', async () => {
    const rgba = new Uint8Array([255, 0, 0, 0, 0, 0, 255, 255]); // transparent red, opaque blue
    const png = await encodePng({ width: 2, height: 1, data: rgba });
    expect(Array.from((await decode(png)).data)).toEqual([255, 255, 255, 0, 0, 255]);
    expect(Array.from((await decodeRgba(png)).data)).toEqual(Array.from(rgba));
  });

  it('decodes grayscale PNGs to RGB and gives opaque alpha to images without one', async () => {
    const png = await encodePng({ width: 2, height: 1, data: new Uint8Array([10, 250]) });
    expect(Array.from((await decode(png)).data)).toEqual([10, 10, 10, 250, 250, 250]);
    expect(Array.from((await decodeRgba(png)).data)).toEqual([10, 10, 10, 255, 250, 250, 250, 255]);
  });

  it('honours EXIF orientation', async () => {
    // 4x2 stored: left half red, right half blue; orientation 6 = display rotated 90 degrees clockwise.
    const img = fillRect(solid(4, 2, [255, 0, 0]), 2, 0, 2, 2, [0, 0, 255]);
    const jpg = await sharp(img.data, { raw: { width: 4, height: 2, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const shown = await decode(jpg);
    expect([shown.width, shown.height]).toEqual([2, 4]);
    // after a clockwise turn the stored left (red) is at the top, the right (blue) at the bottom
    expect(shown.data[0]!).toBeGreaterThan(200);
    expect(shown.data[(3 * 2 + 1) * 3 + 2]!).toBeGreaterThan(200);
  });

  it('refuses a header that claims 100k x 100k pixels without decoding it', async () => {
    const bomb = pngHeaderClaiming(100_000, 100_000);
    await expect(decode(bomb)).rejects.toMatchObject({ code: 'TOO_LARGE', message: expect.stringContaining('100000x100000') });
    expect(await codeOf(decodeRgba(bomb))).toBe('TOO_LARGE');
  });

  it('applies a caller pixel limit', async () => {
    const png = await encodePng(solid(20, 20, [1, 2, 3]));
    expect(await codeOf(decode(png, { maxPixels: 399 }))).toBe('TOO_LARGE');
    expect(await codeOf(decode(png, { maxPixels: 400 }))).toBe('resolved');
  });

  it('refuses bytes that are not PNG, JPEG or WebP', async () => {
    expect(await codeOf(decode(new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>')))).toBe('NOT_AN_IMAGE');
    const gif = new TextEncoder().encode('GIF89a\x01\x00\x01\x00\x00\x00\x00');
    expect(await codeOf(decode(gif))).toBe('NOT_AN_IMAGE');
    expect(await codeOf(decode(new Uint8Array(0)))).toBe('NOT_AN_IMAGE');
  });

  it('reports a truncated file as corrupt', async () => {
    const png = await encodePng(gradient(64, 64));
    expect(await codeOf(decode(png.subarray(0, 60)))).toBe('CORRUPT_IMAGE');
  });

  it('reads and writes files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imaging-'));
    try {
      const img = gradient(9, 7);
      await writePng(join(dir, 'a.png'), img);
      expect(sniffImageType(await readFile(join(dir, 'a.png')))).toBe('png');
      expect(Buffer.from((await readImage(join(dir, 'a.png'))).data).equals(Buffer.from(img.data))).toBe(true);
      await writeFile(join(dir, 'b.png'), 'not really');
      expect(await codeOf(readImage(join(dir, 'b.png')))).toBe('NOT_AN_IMAGE');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
