/**
 * A step's feeds on the tiny bundle: noisy latents and targets against the closed-form DDPM forward
 * process, md_mask = M_s at latent size, token_select at the placeholders, ICA/AUG targets = g(M * A(c_hat))
 * at the class words, weights naming the drawn subjects.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTinyBundle, GaussianRng, loadBundle, type ModelBundle } from '@dynasyn/diffusion';
import { flipHorizontal, resizeMask, union } from '@dynasyn/imaging';
import { DataType } from '@dynasyn/ort-training';
import type { AugmentedExample, Mask } from '../types.js';
import { twoSubjectBatchSetup, twoSubjectInput } from '../testing/two-subjects.js';
import { buildBatch, drawStep, type BatchSetup } from './batch.js';
import { promptTokens } from './prompts.js';
import { attentionGrid, frozenClassModel, placeholderTokenizer, type FrozenClassModel } from './setup.js';

const floats = (m: Mask): number[] => Array.from(m.data);

let dir: string;
let bundle: ModelBundle;
let frozen: FrozenClassModel;
let setup: BatchSetup;
const input = twoSubjectInput();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dynasyn-batch-'));
  createTinyBundle(join(dir, 'bundle'));
  bundle = loadBundle(join(dir, 'bundle'));
  const { tokenizer } = placeholderTokenizer(bundle, 2);
  const grid = attentionGrid(bundle, 4);
  const flipped = flipHorizontal(input.image);
  const augmented: AugmentedExample[] = [
    {
      image: flipped,
      prompt: 'a photo of <asset1> next to <asset0>',
      classPrompt: 'a photo of bowl next to panda',
      nounPrompt: 'a photo of bowl next to panda',
      subjects: [0, 1],
      masks: input.subjects.map((s) => flipHorizontal(s.mask)),
      category: 'interaction',
    },
  ];
  frozen = await frozenClassModel(bundle, grid, {}, join(dir, 'cache'));
  // targets from the separate frozen class-map session (frozen.run), not from the training graph
  setup = await twoSubjectBatchSetup(
    bundle,
    input,
    tokenizer,
    { frozenInGraph: false, idsType: DataType.INT64, timestepType: DataType.INT64, latentType: DataType.FLOAT },
    augmented,
  );
});
afterAll(async () => {
  await frozen?.release();
  rmSync(dir, { recursive: true, force: true });
});

/** abar_t of SD's scaled_linear schedule, computed here independently of the diffusion package. */
function alphaBar(t: number): number {
  const T = 1000,
    s0 = Math.sqrt(0.00085),
    s1 = Math.sqrt(0.012);
  let abar = 1;
  for (let i = 0; i <= t; i++) abar *= 1 - (s0 + ((s1 - s0) * i) / (T - 1)) ** 2;
  return abar;
}

describe('promptTokens', () => {
  it('finds each placeholder in c and the first sub-token of its class word in c_hat', () => {
    const tok = setup.tokenizer;
    const multi = 'zebrafish';
    expect(tok.classWordIds(multi).length).toBeGreaterThan(1);
    const p = promptTokens(tok, 'a photo of <asset1> and <asset0> on the grass', [multi, 'bowl'], 77);
    expect(p.classPrompt).toBe(`a photo of bowl and ${multi} on the grass`);
    expect(p.ids[p.placeholderAt.get(1)![0]!]).toBe(tok.idOf('<asset1>'));
    expect(p.ids[p.placeholderAt.get(0)![0]!]).toBe(tok.idOf('<asset0>'));
    expect(p.placeholderAt.get(1)).toEqual([4]);
    expect(p.classWordAt.get(1)).toBe(4);
    expect(p.classIds[p.classWordAt.get(0)!]).toBe(tok.firstSubTokenId(multi));
    expect(Array.from(p.classIds)).toEqual(Array.from(tok.encodePadded(p.classPrompt, 77)));
    expect(() => promptTokens(tok, 'a photo of <asset5>', ['panda', 'bowl'], 77)).toThrow(/names <asset5>/);
  });
});

describe('buildBatch', () => {
  it('noises z0 by DDPM with the drawn t and eps, targets eps, and masks M_s at latent size in row 0 only', async () => {
    const rng = new GaussianRng(5);
    for (let i = 0; i < 4; i++) {
      const draw = drawStep(setup, rng.fork(`step-1-${i}`), undefined);
      const b = await buildBatch(setup, draw, frozen.run);
      const f = b.feeds;
      expect(f.noisy_latents!.dims).toEqual([2, 4, 32, 32]);
      expect(f.input_ids!.dims).toEqual([2, 77]);
      expect(f.token_select!.dims).toEqual([2, 77, 2]);
      expect(f.m2a_target!.dims).toEqual([2, 64]);
      const z0 = draw.union.flip ? setup.reference.flipped : setup.reference.plain;
      const a = alphaBar(draw.t);
      const zt = f.noisy_latents!.data as Float32Array;
      for (const k of [0, 123, 4095]) expect(zt[k]).toBeCloseTo(Math.sqrt(a) * z0[k]! + Math.sqrt(1 - a) * draw.noise[k]!, 5);
      expect(Array.from((f.target!.data as Float32Array).subarray(0, 4096))).toEqual(Array.from(draw.noise));
      expect(Number((f.timestep!.data as BigInt64Array)[0])).toBe(draw.t);

      const md = Array.from(f.md_mask!.data as Float32Array);
      expect(md.slice(0, 1024)).toEqual(floats(resizeMask(union(...draw.union.masks), 32, 32)));
      expect(md.slice(1024).every((v) => v === 0)).toBe(true);
      // the union mask really is the (flipped) union of the drawn subjects
      const expectUnion = union(...draw.union.subjects.map((j) => (draw.union.flip ? flipHorizontal(input.subjects[j]!.mask) : input.subjects[j]!.mask)));
      expect(floats(draw.union.unionMask)).toEqual(floats(expectUnion));

      const sel = f.token_select!.data as Float32Array;
      const ids = f.input_ids!.data as BigInt64Array;
      for (const j of [0, 1]) {
        const col = Array.from({ length: 77 }, (_, p) => sel[p * 2 + j]!);
        const inS = draw.union.subjects.includes(j);
        expect(col.reduce((x, y) => x + y, 0)).toBe(inS ? 1 : 0);
        if (inS) expect(Number(ids[col.indexOf(1)])).toBe(setup.tokenizer.idOf(`<asset${j}>`));
        expect((f.m2a_weight!.data as Float32Array)[j]).toBe(inS ? 1 : 0);
        expect((f.ica_weight!.data as Float32Array)[j]).toBe(inS ? 1 : 0);
        const m2a = Array.from((f.m2a_target!.data as Float32Array).subarray(j * 64, (j + 1) * 64));
        const mask = draw.union.flip ? flipHorizontal(input.subjects[j]!.mask) : input.subjects[j]!.mask;
        expect(m2a).toEqual(inS ? floats(resizeMask(mask, 8, 8)) : new Array(64).fill(0));
      }
      expect(Array.from(f.aug_weight!.data as Float32Array)).toEqual([0, 0]);
      expect(Array.from(f.lambdas!.data as Float32Array)).toEqual(Array.from(Float32Array.of(1, 1e-2, 5e-3, 1e-4)));
    }
  });

  it('ICA targets are g(M_j * A_j(c_hat)) of the frozen model at the class word, on the same z_t and t', async () => {
    const draw = drawStep(setup, new GaussianRng(8).fork('x'), undefined);
    const b = await buildBatch(setup, draw, frozen.run);
    const classIds = new Int32Array(154);
    classIds.set(b.reference.classIds);
    classIds.set(b.reference.classIds, 77);
    const maps = await frozen.run(classIds, b.feeds.noisy_latents!.data as Float32Array, b.timesteps);
    expect(maps.length).toBe(2 * 64 * 77);
    const ica = b.feeds.ica_target!.data as Float32Array;
    for (const j of draw.union.subjects) {
      const pos = b.reference.classWordAt.get(j)!;
      expect(b.reference.classIds[pos]).toBe(setup.tokenizer.firstSubTokenId(input.subjects[j]!.classWord));
      const m = resizeMask(draw.union.masks[draw.union.subjects.indexOf(j)]!, 8, 8).data;
      const prod = Array.from({ length: 64 }, (_, p) => m[p]! * maps[p * 77 + pos]!);
      const peak = Math.max(...prod);
      expect(peak).toBeGreaterThan(0);
      const got = Array.from(ica.subarray(j * 64, (j + 1) * 64));
      got.forEach((v, p) => expect(v).toBeCloseTo(prod[p]! / peak, 6));
      expect(Math.max(...got)).toBe(1);
    }
  });

  it('row 1 holds the augmented example with its own t and noise, its prompt and pseudo-mask targets', async () => {
    const draw = drawStep(setup, new GaussianRng(2).fork('step-1-1'), 0);
    expect(draw.aug).toBeDefined();
    const b = await buildBatch(setup, draw, frozen.run);
    const f = b.feeds;
    expect(b.augIndex).toBe(0);
    expect(Number((f.timestep!.data as BigInt64Array)[1])).toBe(draw.aug!.t);
    const a = alphaBar(draw.aug!.t);
    const zt = f.noisy_latents!.data as Float32Array;
    const z0 = setup.augmented[0]!.latents;
    for (const k of [0, 777]) expect(zt[4096 + k]).toBeCloseTo(Math.sqrt(a) * z0[k]! + Math.sqrt(1 - a) * draw.aug!.noise[k]!, 5);
    const ids = Array.from(f.input_ids!.data as BigInt64Array, Number).slice(77);
    expect(ids).toEqual(Array.from(setup.tokenizer.encodePadded('a photo of <asset1> next to <asset0>', 77)));
    const sel = f.token_select!.data as Float32Array;
    for (const j of [0, 1]) {
      const at = ids.indexOf(setup.tokenizer.idOf(`<asset${j}>`)!);
      expect(sel[77 * 2 + at * 2 + j]).toBe(1);
    }
    expect(Array.from(f.aug_weight!.data as Float32Array)).toEqual([1, 1]);
    const aug = f.aug_target!.data as Float32Array;
    for (const j of [0, 1]) {
      const m = resizeMask(flipHorizontal(input.subjects[j]!.mask), 8, 8).data;
      const row = aug.subarray(j * 64, (j + 1) * 64);
      expect(Math.max(...row)).toBe(1);
      row.forEach((v, p) => {
        if (!m[p]) expect(v).toBe(0);
      });
    }
    expect(Array.from((f.md_mask!.data as Float32Array).subarray(1024)).every((v) => v === 0)).toBe(true);
  });
});
