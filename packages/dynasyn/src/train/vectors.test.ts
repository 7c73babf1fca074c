/**
 * Placeholders of several embedding rows (TrainOptions.placeholderVectors, multi-vector textual inversion) on
 * the tiny bundle: each `<asset_i>` stands for V tokens in c, the losses read the sum of their attention
 * columns, the rows start from the noun phrase, every row trains, the concepts keep V on disk, and sampling
 * reads exactly the named token's V rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTinyBundle, GaussianRng, loadBundle, type ModelBundle } from '@dynasyn/diffusion';
import { DataType } from '@dynasyn/ort-training';
import { preset } from '../presets.js';
import { createPersonalizedPipeline } from '../sample.js';
import { readLearnedConcepts, writeLearnedConcepts } from '../output/concepts.js';
import { createManifest, writeManifest } from '../output/manifest.js';
import { twoSubjectBatchSetup, twoSubjectInput } from '../testing/two-subjects.js';
import type { TrainOptions } from '../types.js';
import { buildBatch, drawStep } from './batch.js';
import { promptTokens } from './prompts.js';
import { placeholderStartIds, placeholderTokenizer } from './setup.js';
import { trainPersonalization, type TrainResult } from './trainer.js';

let dir: string;
let bundle: ModelBundle;
const input = twoSubjectInput();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dynasyn-vectors-'));
  createTinyBundle(join(dir, 'bundle'));
  bundle = loadBundle(join(dir, 'bundle'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('prompts and batches', () => {
  it('finds all V positions of each placeholder, and refuses a prompt that truncates one', () => {
    const { tokenizer } = placeholderTokenizer(bundle, 2, 3);
    const p = promptTokens(tokenizer, 'a photo of <asset1> and <asset0>', ['panda', 'bowl'], 77);
    const a1 = p.placeholderAt.get(1)!,
      a0 = p.placeholderAt.get(0)!;
    expect(a1).toEqual([4, 5, 6]);
    expect(a0).toEqual([8, 9, 10]);
    expect(a1.map((i) => p.ids[i])).toEqual(tokenizer.idsOf('<asset1>'));
    // c_hat has the class word once: its position counts one token per word, not V
    expect(p.classPrompt).toBe('a photo of bowl and panda');
    expect(p.classIds[p.classWordAt.get(0)!]).toBe(tokenizer.firstSubTokenId('panda'));
    // 8 tokens fit in 10 (start and end take 2): <asset0>'s third vector would be cut
    expect(() => promptTokens(tokenizer, 'a b c d e f <asset0>', ['panda'], 10)).toThrow(/with its 3 vectors/);
  });

  it("selects the sum of a subject's V columns", async () => {
    const { tokenizer } = placeholderTokenizer(bundle, 2, 3);
    const setup = await twoSubjectBatchSetup(bundle, input, tokenizer, {
      frozenInGraph: true,
      idsType: DataType.INT64,
      timestepType: DataType.INT64,
      latentType: DataType.FLOAT,
    });
    for (let i = 0; i < 4; i++) {
      const draw = drawStep(setup, new GaussianRng(11).fork(`step-${i}`), undefined);
      const f = (await buildBatch(setup, draw)).feeds;
      const sel = f.token_select!.data as Float32Array;
      const ids = Array.from(f.input_ids!.data as BigInt64Array, Number).slice(0, 77);
      for (const j of [0, 1]) {
        const picked = ids.filter((_, pos) => sel[pos * 2 + j] === 1);
        expect(picked).toEqual(draw.union.subjects.includes(j) ? tokenizer.idsOf(`<asset${j}>`) : []);
      }
    }
  });
});

describe('start rows', () => {
  it('one vector: the class word; several: the noun phrase in order, then the class word', () => {
    const { tokenizer } = placeholderTokenizer(bundle, 1, 4);
    const panda = tokenizer.firstSubTokenId('panda');
    expect(placeholderStartIds(tokenizer, { classWord: 'panda', nounPhrase: 'red bowl' }, 1)).toEqual([panda]);
    const phrase = tokenizer.classWordIds('red bowl');
    expect(phrase.length).toBeLessThan(4);
    expect(placeholderStartIds(tokenizer, { classWord: 'panda', nounPhrase: 'red bowl' }, 4)).toEqual([...phrase, ...Array(4 - phrase.length).fill(panda)]);
    expect(placeholderStartIds(tokenizer, { classWord: 'panda' }, 2)).toEqual([panda, panda]);
    expect(placeholderStartIds(tokenizer, { classWord: 'panda', nounPhrase: 'red bowl' }, 1 + phrase.length - 1)).toEqual(phrase);
  });
});

describe('training and sampling', () => {
  const options: TrainOptions = {
    ...preset('tiny').train,
    phase1: { steps: 3, lr: 5e-2 },
    phase2: { steps: 2, lr: 1e-3 },
    checkpointEvery: 0,
    placeholderVectors: 2,
  };
  let r: TrainResult;

  it('trains every row of every placeholder and keeps V with the concepts on disk', async () => {
    r = await trainPersonalization({ bundle, input, options, seed: 2, cacheDir: join(dir, 'cache'), intraOpNumThreads: 1 });
    const D = bundle.textEmbedDim;
    expect(r.concepts.tokens).toEqual(['<asset0>', '<asset1>']);
    expect(r.concepts.placeholderVectors).toBe(2);
    expect(r.concepts.embeddings.dims).toEqual([4, D]);
    // both rows of a subject start from the class word's row (no noun phrase): they differ only if each was trained
    const rows = r.concepts.embeddings.data as Float32Array;
    const row = (k: number) => Array.from(rows.subarray(k * D, (k + 1) * D));
    expect(row(0)).not.toEqual(row(1));
    expect(row(2)).not.toEqual(row(3));

    const out = join(dir, 'run');
    writeManifest(
      out,
      createManifest({ backboneDir: bundle.dir, tokens: r.concepts.tokens, classWords: r.concepts.classWords, preset: 'tiny', seed: 2, options }),
    );
    writeLearnedConcepts(out, r.concepts);
    const back = readLearnedConcepts(out);
    expect(back.placeholderVectors).toBe(2);
    expect(Array.from(back.embeddings.data as Float32Array)).toEqual(Array.from(rows));
    expect(() => writeLearnedConcepts(join(dir, 'bad'), { ...r.concepts, placeholderVectors: 3 })).toThrow(/expected \[6, D\] for 2 tokens of 3 vectors/);
  });

  it("samples with exactly the named placeholder's V rows", async () => {
    const pipeline = await createPersonalizedPipeline(bundle, r.concepts, { cacheDir: join(dir, 'sample-cache'), intraOpNumThreads: 1 });
    try {
      const D = bundle.textEmbedDim;
      const draw = async (rows: Float32Array) =>
        (await pipeline.textToImage({ prompt: 'a photo of <asset0>', steps: 2, guidance: 3, seed: 5, placeholderEmbeddings: rows })).images[0]!.data;
      const trained = Float32Array.from(r.concepts.embeddings.data as Float32Array);
      const base = await draw(trained);
      const changed = (k: number) => {
        const rows = trained.slice();
        for (let d = 0; d < D; d++) rows[k * D + d] = rows[k * D + d]! + 0.5;
        return rows;
      };
      // <asset0>'s second vector is read (a prompt naming it once gets both rows) ...
      expect(Buffer.from(await draw(changed(1))).equals(Buffer.from(base))).toBe(false);
      // ... and <asset1>'s rows are not
      expect(Buffer.from(await draw(changed(2))).equals(Buffer.from(base))).toBe(true);
      expect(Buffer.from(await draw(changed(3))).equals(Buffer.from(base))).toBe(true);
    } finally {
      await pipeline.release();
    }
  });
});
