/** Pseudo masks from attention maps, token positions, and composition, without running a model. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClipTokenizer, writeTinyTokenizer } from '@dynasyn/diffusion';
import { area, boundingBox, type Mask } from '@dynasyn/imaging';
import { pasteSubjects } from './compose.js';
import { attentionMasks, createSamSegmenter, otsuThreshold, slotTokenPositions } from './pseudo-masks.js';
import { isAugmentationError } from './errors.js';

/** An 8x8 map with a Gaussian bump at (cx, cy) on a small floor. */
function bump(cx: number, cy: number, n = 8): Float32Array {
  const m = new Float32Array(n * n);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) m[y * n + x] = 0.01 + Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 2);
  return m;
}

const isBinary = (m: Mask) => m.data.every((v) => v === 0 || v === 1);

describe('attention pseudo masks', () => {
  test('binary, image-sized, non-empty, where the attention is, and exclusive', () => {
    const masks = attentionMasks([bump(1.5, 1.5), bump(5.5, 5.5)], 8, 8, 128, 128, { threshold: 0.5 });
    expect(masks).toHaveLength(2);
    for (const m of masks) {
      expect([m.width, m.height]).toEqual([128, 128]);
      expect(isBinary(m)).toBe(true);
      expect(area(m)).toBeGreaterThan(0);
    }
    const [a, b] = [boundingBox(masks[0]!)!, boundingBox(masks[1]!)!];
    expect(a.x + a.width / 2).toBeLessThan(64);
    expect(b.x + b.width / 2).toBeGreaterThan(64);
    // overlapping attention: exclusivity leaves at most the dilation seam shared
    const close = attentionMasks([bump(3, 3), bump(4, 4)], 8, 8, 128, 128, { dilation: 0 });
    expect(close[0]!.data.some((v, p) => v && close[1]!.data[p])).toBe(false);
    expect(area(close[0]!)).toBeGreaterThan(0);
    expect(area(close[1]!)).toBeGreaterThan(0);
  });

  test('a higher threshold gives a smaller mask; a flat map covers everything; Otsu splits two levels', () => {
    const [lo] = attentionMasks([bump(4, 4)], 8, 8, 64, 64, { threshold: 0.3, dilation: 0 });
    const [hi] = attentionMasks([bump(4, 4)], 8, 8, 64, 64, { threshold: 0.8, dilation: 0 });
    expect(area(hi!)).toBeLessThan(area(lo!));
    const [flat] = attentionMasks([new Float32Array(64)], 8, 8, 32, 32);
    expect(area(flat!)).toBe(32 * 32);
    const t = otsuThreshold([...Array(100).fill(0.1), ...Array(100).fill(0.9)]);
    expect(t).toBeGreaterThan(0.1);
    expect(t).toBeLessThanOrEqual(0.9);
    expect(() => attentionMasks([bump(1, 1)], 8, 8, 8, 8, { threshold: 0 })).toThrow(/threshold/);
  });

  test('SAM: a clear not-configured error, and unsupported when configured', () => {
    const e = (() => {
      try {
        createSamSegmenter(undefined);
      } catch (x) {
        return x;
      }
    })();
    expect(isAugmentationError(e, 'NOT_CONFIGURED')).toBe(true);
    expect(() => createSamSegmenter('/models/sam')).toThrow(/not implemented/);
  });
});

describe('slot token positions', () => {
  let dir: string;
  let tok: ClipTokenizer;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-aug-tok-'));
    writeTinyTokenizer(dir);
    tok = ClipTokenizer.fromDir(dir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the positions hold exactly the tokens of each subject phrase (start token at 0)', () => {
    const template = 'the {1} on top of the {0} on the beach';
    const words = ['toy panda with white belly', 'green bowl'];
    const pos = slotTokenPositions(tok, template, words);
    const ids = tok.encodePadded(template.replace('{0}', words[0]!).replace('{1}', words[1]!));
    expect(tok.decode(pos[0]!.map((p) => ids[p]!))).toBe('toy panda with white belly');
    expect(tok.decode(pos[1]!.map((p) => ids[p]!))).toBe('green bowl');
    expect(pos[1]![0]).toBe(2); // <start> the green ...
  });
});

describe('composition', () => {
  /** A 64x64 reference with a textured subject (a disk) of radius 10 at (20, 24). */
  function reference() {
    const n = 64;
    const data = new Uint8Array(n * n * 3),
      m = new Uint8Array(n * n);
    for (let y = 0; y < n; y++)
      for (let x = 0; x < n; x++) {
        const p = y * n + x;
        data.set([(x * 37 + y * 11) & 255, (x * 5 + y * 53) & 255, (x * y) & 255], p * 3);
        if ((x - 20) ** 2 + (y - 24) ** 2 <= 100) m[p] = 1;
      }
    return { image: { width: n, height: n, data }, mask: { width: n, height: n, data: m } };
  }
  const boxMask = (n: number, x0: number, y0: number, w: number, h: number): Mask => {
    const data = new Uint8Array(n * n);
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) data[y * n + x] = 1;
    return { width: n, height: n, data };
  };

  test('at scale 1 the pasted mask holds exactly the reference subject pixels; elsewhere the draft is untouched', async () => {
    const ref = reference();
    const draft = { width: 96, height: 96, data: new Uint8Array(96 * 96 * 3).fill(9) };
    const bb = boundingBox(ref.mask)!; // 21x21
    const draftMask = boxMask(96, 50, 40, bb.width, bb.height);
    const c = await pasteSubjects({ draft, draftMasks: [draftMask], reference: ref.image, referenceMasks: [ref.mask] });
    const pasted = c.masks[0]!;
    expect(area(pasted)).toBe(area(ref.mask));
    for (let y = 0; y < 96; y++)
      for (let x = 0; x < 96; x++) {
        const p = y * 96 + x;
        const got = Array.from(c.image.data.subarray(p * 3, p * 3 + 3));
        if (pasted.data[p]) {
          const q = (y - 40 + bb.y) * 64 + (x - 50 + bb.x);
          expect(ref.mask.data[q]).toBe(1);
          expect(got).toEqual(Array.from(ref.image.data.subarray(q * 3, q * 3 + 3)));
        } else expect(got).toEqual([9, 9, 9]);
      }
    // the holes are the draft box minus the disk
    expect(area(c.holes)).toBe(area(draftMask) - area(pasted));
    expect(c.holes.data.every((v, p) => !v || (draftMask.data[p] && !pasted.data[p]))).toBe(true);
  });

  test('scaled into the box, later pastes hide earlier ones, and a bad order is refused', async () => {
    const ref = reference();
    const draft = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
    const masks = [boxMask(64, 0, 0, 40, 40), boxMask(64, 20, 20, 40, 40)];
    const c = await pasteSubjects({ draft, draftMasks: masks, reference: ref.image, referenceMasks: [ref.mask, ref.mask], order: [0, 1] });
    const a0 = area(c.masks[0]!),
      a1 = area(c.masks[1]!);
    expect(a1).toBeGreaterThan(area(ref.mask) * 2.5); // 21 -> 40 px: about 3.6x the area
    expect(a0).toBeLessThan(a1); // partly covered by slot 1
    expect(c.masks[0]!.data.some((v, p) => v && c.masks[1]!.data[p])).toBe(false);
    await expect(pasteSubjects({ draft, draftMasks: masks, reference: ref.image, referenceMasks: [ref.mask, ref.mask], order: [1, 1] })).rejects.toThrow(
      /permutation/,
    );
  });
});
