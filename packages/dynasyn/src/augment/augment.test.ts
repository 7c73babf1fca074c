/** Drafts, GSA and the whole augmentation on the tiny random-weight bundle: its images are noise, so these test structure. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyBundle, DiffusionPipeline, Unet } from '@dynasyn/diffusion';
import { area, type Mask } from '@dynasyn/imaging';
import type { AugmentationOptions, PersonalizationInput, ProgressEvent, RgbImage } from '../types.js';
import { applyGsa, augment, composeAugmentations, type AugmentedSample } from './augment.js';
import { renderDrafts } from './drafts.js';
import { gsaSchedule, guidedSdeAugmentation } from './gsa.js';
import { attentionMasks } from './pseudo-masks.js';
import { loadAugmented, loadComposed, saveAugmented } from './storage.js';
import { isAugmentationError } from './errors.js';

let dir: string;
let pipeline: DiffusionPipeline;
/** One attention-capturing UNet for the whole file (creating one takes a second or two). */
let attentionUnet: Unet;
const N = 128;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-augment-'));
  await createTinyBundle(path.join(dir, 'bundle'), { seed: 1 });
  pipeline = await DiffusionPipeline.create(path.join(dir, 'bundle'), { intraOpNumThreads: 1 });
  attentionUnet = await Unet.create(pipeline.bundle, { intraOpNumThreads: 1, captureAttention: {} });
});
afterAll(async () => {
  await attentionUnet?.release();
  await pipeline?.release();
  fs.rmSync(dir, { recursive: true, force: true });
});

const same = (a: RgbImage, b: RgbImage) => a.width === b.width && a.height === b.height && Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) === 0;
const isBinary = (m: Mask) => m.data.every((v) => v === 0 || v === 1);

/** A smooth picture with a disk (a "panda") and a square (a "bowl"). */
function input(): PersonalizationInput {
  const data = new Uint8Array(N * N * 3),
    disk = new Uint8Array(N * N),
    square = new Uint8Array(N * N);
  for (let y = 0; y < N; y++)
    for (let x = 0; x < N; x++) {
      const p = y * N + x;
      data.set([x * 2, y * 2, 128], p * 3);
      if ((x - 40) ** 2 + (y - 60) ** 2 < 400) {
        disk[p] = 1;
        data.set([240, 240, 240], p * 3);
      }
      if (x >= 80 && x < 110 && y >= 70 && y < 100) {
        square[p] = 1;
        data.set([30, 160, 40], p * 3);
      }
    }
  return {
    image: { width: N, height: N, data },
    subjects: [
      { mask: { width: N, height: N, data: disk }, classWord: 'panda', nounPhrase: 'toy panda with white belly' },
      { mask: { width: N, height: N, data: square }, classWord: 'bowl', nounPhrase: 'green bowl' },
    ],
  };
}

const OPTIONS: AugmentationOptions = {
  count: 2,
  promptProvider: { kind: 'templates' },
  draftSteps: 3,
  draftGuidance: 5,
  gsaStrength: 0.7,
  gsaSchedule: 'fast',
  gsaSteps: 4,
  pseudoMasks: { kind: 'attention', threshold: 0.5 },
};

describe('drafts', () => {
  test('a draft is the text-to-image sample of its seed; its subject attention gives image-sized binary masks', async () => {
    const words = ['toy panda with white belly', 'green bowl'];
    const [d] = await renderDrafts(pipeline, [{ template: 'the {0} is playing with the {1}', words }], { steps: 3, guidance: 5, seed: 11, attentionUnet });
    expect(d!.prompt).toBe('the toy panda with white belly is playing with the green bowl');
    const t2i = await pipeline.textToImage({ prompt: d!.prompt, steps: 3, guidance: 5, seed: 11 });
    expect(same(d!.image, t2i.images[0]!)).toBe(true);
    expect([d!.height, d!.width]).toEqual([8, 8]); // latent 32 / 4
    expect(d!.slotTokens.map((t) => t.length)).toEqual([5, 2]);
    expect(d!.slotMaps[0]).not.toEqual(d!.slotMaps[1]);
    // probabilities over keys, averaged: each token column is in [0, 1]
    for (const m of d!.slotMaps) expect(m.every((v) => v >= 0 && v <= 1)).toBe(true);
    const masks = attentionMasks(d!.slotMaps, d!.height, d!.width, N, N);
    for (const m of masks) {
      expect([m.width, m.height]).toEqual([N, N]);
      expect(isBinary(m)).toBe(true);
      expect(area(m)).toBeGreaterThan(0);
      expect(area(m)).toBeLessThan(N * N);
    }
  });
});

describe('Guided SDE Augmentation', () => {
  test('schedules: fast = DDIM, strength x steps denoising; paper = 700 of 1000 DDPM steps', () => {
    expect(gsaSchedule({ schedule: 'fast', steps: 50, strength: 0.7 }, 1000)).toEqual({ scheduler: 'ddim', steps: 50, denoisingSteps: 35 });
    expect(gsaSchedule({ schedule: 'paper', steps: 50, strength: 0.7 }, 1000)).toEqual({ scheduler: 'ddpm', steps: 1000, denoisingSteps: 700 });
    expect(() => gsaSchedule({ schedule: 'fast', steps: 50, strength: 0 }, 1000)).toThrow(/strength/);
  });

  test('the output has the input size, differs from it, and its seed reproduces it', async () => {
    const img = input().image;
    const o = { strength: 0.7, schedule: 'fast' as const, steps: 4, guidance: 5, seed: 5 };
    const a = await guidedSdeAugmentation(pipeline, img, 'the green bowl', o);
    expect([a.image.width, a.image.height]).toEqual([N, N]);
    expect(same(a.image, img)).toBe(false);
    expect(a).toMatchObject({ seed: 5, scheduler: 'ddim', steps: 4, denoisingSteps: 2 });
    expect(same((await guidedSdeAugmentation(pipeline, img, 'the green bowl', o)).image, a.image)).toBe(true);
  });
});

describe('augment', () => {
  let first: AugmentedSample[];
  const events: ProgressEvent[] = [];

  test('count 2 on the tiny bundle: complete examples, progress, under a minute', async () => {
    const t0 = Date.now();
    first = await augment(input(), pipeline, OPTIONS, { seed: 3, onProgress: (e) => events.push(e), runtime: { intraOpNumThreads: 1 } });
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(first).toHaveLength(2);
    for (const e of first) {
      expect([e.image.width, e.image.height]).toEqual([N, N]);
      expect(e.masks).toHaveLength(e.subjects.length);
      for (const m of e.masks) {
        expect([m.width, m.height]).toEqual([N, N]);
        expect(isBinary(m)).toBe(true);
      }
      expect(e.masks.some((m) => area(m) > 0)).toBe(true);
      // the three renderings of one template
      e.subjects.forEach((s, k) => {
        expect(e.prompt).toContain(`<asset${s}>`);
        expect(e.classPrompt).toContain(['panda', 'bowl'][s]!);
        expect(e.nounPrompt).toContain(['toy panda with white belly', 'green bowl'][s]!);
        expect(e.template).toContain(`{${k}}`);
      });
      expect(['plain', 'action', 'interaction']).toContain(e.category);
      expect(Object.values(e.seeds).every(Number.isInteger)).toBe(true);
    }
    expect(events.filter((e) => e.stage === 'augment').at(-1)).toMatchObject({ step: 4, total: 4 });
    expect(events.filter((e) => e.stage === 'gsa').map((e) => e.step)).toEqual([1, 2]);
  });

  test('the same seed reproduces the set; another seed gives another', async () => {
    const again = await augment(input(), pipeline, OPTIONS, { seed: 3, attentionUnet });
    expect(again.map((e) => [e.prompt, e.seeds, e.pasteOrder])).toEqual(first.map((e) => [e.prompt, e.seeds, e.pasteOrder]));
    again.forEach((e, i) => {
      expect(same(e.image, first[i]!.image)).toBe(true);
      e.masks.forEach((m, k) => expect(Buffer.compare(Buffer.from(m.data), Buffer.from(first[i]!.masks[k]!.data))).toBe(0));
    });
    const other = await augment(input(), pipeline, { ...OPTIONS, count: 1 }, { seed: 4, attentionUnet });
    expect(other[0]!.seeds).not.toEqual(first[0]!.seeds);
    expect(same(other[0]!.image, first[0]!.image)).toBe(false);
  });

  test('save and load round trip', async () => {
    const out = path.join(dir, 'augmented');
    await saveAugmented(out, first);
    const loaded = await loadAugmented(out);
    expect(loaded).toHaveLength(first.length);
    loaded.forEach((e, i) => {
      const f = first[i]!;
      expect(same(e.image, f.image)).toBe(true);
      expect({ ...e, image: undefined, masks: e.masks.map((m) => Array.from(m.data)) }).toEqual({
        ...f,
        image: undefined,
        masks: f.masks.map((m) => Array.from(m.data)),
      });
    });
    fs.rmSync(path.join(out, 'aug-001-mask-0.png'));
    await expect(loadAugmented(out)).rejects.toThrow(/aug-001-mask-0\.png, named in augmented\.json, does not exist/);
    await expect(loadAugmented(path.join(dir, 'nowhere'))).rejects.toThrow(/run `dynasyn augment` first/);
  });

  test('composition and GSA run apart, through a saved composed set, give exactly the set augment gives', async () => {
    const gsaEvents: ProgressEvent[] = [];
    const composed = await composeAugmentations(input(), pipeline, OPTIONS, { seed: 3, attentionUnet, onProgress: (e) => gsaEvents.push(e) });
    expect(gsaEvents.every((e) => e.stage === 'augment')).toBe(true); // no GSA happened yet
    expect(composed.map((e) => [e.prompt, e.seeds, e.pasteOrder])).toEqual(first.map((e) => [e.prompt, e.seeds, e.pasteOrder]));
    // GSA changes every image and keeps the composition's masks
    composed.forEach((c, i) => {
      expect(same(c.image, first[i]!.image)).toBe(false);
      c.masks.forEach((m, k) => expect(Buffer.compare(Buffer.from(m.data), Buffer.from(first[i]!.masks[k]!.data))).toBe(0));
    });
    const out = path.join(dir, 'composed');
    await saveAugmented(out, composed, 'composed');
    // a composed set is never taken for a training set, and a training set is not GSA'd twice
    await expect(loadAugmented(out)).rejects.toThrow(/composed set that has not been through GSA/);
    const final = path.join(dir, 'augmented-final');
    await saveAugmented(final, first);
    await expect(loadComposed(final)).rejects.toThrow(/finished augmented set, not a composed one/);

    const loaded = await loadComposed(out);
    const apart = await applyGsa(pipeline, loaded, OPTIONS, { onProgress: (e) => gsaEvents.push(e) });
    expect(gsaEvents.filter((e) => e.stage === 'gsa').map((e) => [e.step, e.total])).toEqual([
      [1, 2],
      [2, 2],
    ]);
    apart.forEach((e, i) => expect(same(e.image, first[i]!.image)).toBe(true));
    expect(apart.map((e) => [e.prompt, e.nounPrompt, e.seeds, e.pasteOrder, e.subjects])).toEqual(
      first.map((e) => [e.prompt, e.nounPrompt, e.seeds, e.pasteOrder, e.subjects]),
    );
  });

  test('GSA stops within one image when its signal aborts; a composed set without seeds is refused', async () => {
    const composed = await composeAugmentations(input(), pipeline, { ...OPTIONS, count: 1 }, { seed: 5, attentionUnet });
    const ctl = new AbortController();
    ctl.abort(new Error('stop now'));
    await expect(applyGsa(pipeline, composed, OPTIONS, { signal: ctl.signal })).rejects.toThrow('stop now');
    let steps = 0;
    const mid = new AbortController();
    const run = applyGsa(pipeline, [...composed, ...composed], OPTIONS, {
      signal: mid.signal,
      onProgress: () => {
        steps++;
        mid.abort(new Error('canceled mid-set'));
      },
    });
    await expect(run).rejects.toThrow('canceled mid-set');
    expect(steps).toBe(1);
    const out = path.join(dir, 'composed-no-seeds');
    const { template: _t, seeds: _s, pasteOrder: _p, ...bare } = composed[0]!;
    await saveAugmented(out, [bare], 'composed');
    await expect(loadComposed(out)).rejects.toThrow(/lacks its template, seeds or paste order/);
  });

  test('bad inputs are named; count 0 does nothing; SAM without a model folder is not configured', async () => {
    const bad = input();
    bad.subjects[1]!.mask = { width: 64, height: 64, data: new Uint8Array(64 * 64) };
    await expect(augment(bad, pipeline, OPTIONS, { seed: 0 })).rejects.toThrow(/mask of subject 1 \(bowl\) is 64x64; the image is 128x128/);
    expect(await augment(input(), pipeline, { ...OPTIONS, count: 0 }, { seed: 0 })).toEqual([]);
    const e = await augment(input(), pipeline, { ...OPTIONS, pseudoMasks: { kind: 'sam', modelDir: '' } }, { seed: 0 }).catch((x: unknown) => x);
    expect(isAugmentationError(e, 'NOT_CONFIGURED')).toBe(true);
  });
});
