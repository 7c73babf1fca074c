import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTinyBundle } from '@dynasyn/diffusion';
import { DataType, readSafetensors, type HostTensor } from '@dynasyn/ort-training';
import type { LearnedConcepts } from '../types.js';
import {
  MetricsRecorder,
  attentionVsMask,
  bundleHasRandomWeights,
  createManifest,
  isArtifactError,
  markPhaseCompleted,
  readLearnedConcepts,
  readManifest,
  readMetrics,
  readSamples,
  summarizeMetrics,
  writeLearnedConcepts,
  writeManifest,
  writeSampleMetrics,
  writeSamples,
  type StepMetrics,
} from './artifacts.js';
import { rectMask, syntheticImage } from '../testing/synthetic-output.js';
import { folderFingerprint, SAMPLE_CHUNK_BYTES, SAMPLE_CHUNKS, sampleFileHash } from './manifest.js';

let root: string;
let bundle: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'dynasyn-artifacts-'));
  bundle = join(root, 'tiny');
  await createTinyBundle(bundle);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const f32 = (dims: number[], fill: (i: number) => number): HostTensor => {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = fill(i);
  return { dtype: DataType.FLOAT, dims, data };
};

function concepts(): LearnedConcepts {
  return {
    tokens: ['<asset0>', '<asset1>'],
    classWords: ['panda', 'bowl'],
    embeddings: f32([2, 64], (i) => Math.sin(i)),
    adapters: new Map([
      ['unet.q.lora_A', f32([32, 4], (i) => i / 100)],
      ['unet.q.lora_B', f32([4, 32], (i) => -i / 50)],
    ]),
    adapterSpec: [{ model: 'unet', weight: 'onnx::MatMul_1', a: 'unet.q.lora_A', b: 'unet.q.lora_B', scale: 1 }],
  };
}

function newRun(name: string): string {
  const dir = join(root, name);
  writeManifest(
    dir,
    createManifest({
      backboneDir: bundle,
      tokens: ['<asset0>', '<asset1>'],
      classWords: ['panda', 'bowl'],
      embeddingDim: 64,
      preset: 'tiny',
      seed: 3,
      options: { a: 1 },
    }),
  );
  return dir;
}

const expectCode = (fn: () => unknown, code: string, text: RegExp) => {
  try {
    fn();
  } catch (e) {
    expect(isArtifactError(e, code as never)).toBe(true);
    expect((e as Error).message).toMatch(text);
    return;
  }
  throw new Error('expected an error');
};

describe('manifest', () => {
  it('records backbone fingerprint, random weights of the tiny bundle, versions, and round-trips', () => {
    const dir = newRun('manifest');
    const m = readManifest(dir);
    expect(m.backbone.randomWeights).toBe(true);
    expect(m.backbone.fingerprint.fileSizes['unet/model.onnx']).toBeGreaterThan(1000);
    expect(m.backbone.fingerprint.modelIndexSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.packages['@dynasyn/dynasyn']).toBe('0.1.0');
    expect(m.nounPhrases).toEqual(['panda', 'bowl']);
    expect(markPhaseCompleted(dir, 'phase1').phasesCompleted).toEqual(['phase1']);
    expect(markPhaseCompleted(dir, 'phase1').phasesCompleted).toEqual(['phase1']);
  });

  it('does not call a bundle with other sizes random', () => {
    const other = join(root, 'other');
    rmSync(other, { recursive: true, force: true });
    mkdirSync(join(other, 'unet'), { recursive: true });
    mkdirSync(join(other, 'text_encoder'), { recursive: true });
    writeFileSync(join(other, 'model_index.json'), '{}');
    writeFileSync(join(other, 'unet', 'config.json'), JSON.stringify({ block_out_channels: [320, 640, 1280, 1280], sample_size: 64 }));
    writeFileSync(join(other, 'text_encoder', 'config.json'), JSON.stringify({ hidden_size: 1024, num_hidden_layers: 23 }));
    expect(bundleHasRandomWeights(other)).toBe(false);
    writeFileSync(join(other, 'model_index.json'), '{"_random_weights": true}');
    expect(bundleHasRandomWeights(other)).toBe(true);
  });

  it('rejects a manifest of another format', () => {
    const dir = join(root, 'badmanifest');
    newRun('badmanifest');
    const file = join(dir, 'manifest.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), version: 99 }));
    expectCode(() => readManifest(dir), 'BAD_ARTIFACT', /version 99/);
  });
});

describe('learned concepts', () => {
  it('round-trips embeddings and adapters bit-exactly, with tokens and spec in the metadata', () => {
    const dir = newRun('concepts');
    const c = concepts();
    writeLearnedConcepts(dir, c);
    const back = readLearnedConcepts(dir, { backboneDir: bundle });
    expect(back.tokens).toEqual(c.tokens);
    expect(back.classWords).toEqual(c.classWords);
    expect(Array.from(back.embeddings.data as Float32Array)).toEqual(Array.from(c.embeddings.data as Float32Array));
    expect(back.adapterSpec).toEqual(c.adapterSpec);
    expect(Array.from(back.adapters.get('unet.q.lora_B')!.data as Float32Array)).toEqual(Array.from(c.adapters.get('unet.q.lora_B')!.data as Float32Array));
    expect(JSON.parse(readSafetensors(join(dir, 'embeddings.safetensors')).metadata['tokens']!)).toEqual(c.tokens);
  });

  it('says which file disagrees with the manifest', () => {
    const dir = newRun('mismatch');
    writeLearnedConcepts(dir, concepts());
    const m = readManifest(dir);
    writeManifest(dir, { ...m, tokens: ['<asset0>', '<asset9>'] });
    expectCode(() => readLearnedConcepts(dir), 'ARTIFACT_MISMATCH', /embeddings\.safetensors.*tokens/);
    writeManifest(dir, { ...m, embeddingDim: 768 });
    expectCode(() => readLearnedConcepts(dir), 'ARTIFACT_MISMATCH', /row width 64, manifest says 768/);
  });

  it('takes a backbone whose documentation changed for the same one, and not one whose tokenizer or weights did', () => {
    const dir = newRun('backbone-docs');
    writeLearnedConcepts(dir, concepts());
    const edited = join(root, 'tiny-edited-docs');
    rmSync(edited, { recursive: true, force: true });
    cpSync(bundle, edited, { recursive: true });
    // a model card, a README, a preview and a training log written or edited after the training
    writeFileSync(join(edited, 'MODEL_CARD.md'), '# a card\n'.repeat(50));
    writeFileSync(join(edited, 'unet', 'README.md'), 'notes');
    writeFileSync(join(edited, 'preview.png'), new Uint8Array(300));
    writeFileSync(join(edited, 'train-log.jsonl.gz'), new Uint8Array(30));
    writeFileSync(join(edited, 'metrics.json'), '{"accuracy": 0.97}'); // measurements beside a model (the judge's, re-measured)
    expect(readLearnedConcepts(dir, { backboneDir: edited }).tokens).toEqual(concepts().tokens);
    expect(folderFingerprint(edited)).toBe(folderFingerprint(bundle)); // the identity an evaluation's ledger records
    // a manifest written when the fingerprint still listed documentation files compares without them
    const file = join(dir, 'manifest.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    m.backbone.fingerprint.fileSizes['MODEL_CARD.md'] = 123;
    m.backbone.fingerprint.fileSizes['preview.png'] = 7;
    writeFileSync(file, JSON.stringify(m));
    expect(readLearnedConcepts(dir, { backboneDir: edited }).tokens).toEqual(concepts().tokens);
    // the tokenizer's merges are a .txt the model reads: they still count
    const merges = join(edited, 'tokenizer', 'merges.txt');
    writeFileSync(merges, readFileSync(merges, 'utf8') + 'x y\n');
    expectCode(() => readLearnedConcepts(dir, { backboneDir: edited }), 'ARTIFACT_MISMATCH', /tokenizer\/merges\.txt has \d+ bytes/);
  });

  it('refuses a different backbone and malformed adapters', async () => {
    const dir = newRun('backbone');
    writeLearnedConcepts(dir, concepts());
    const changed = join(root, 'tiny-seed1');
    await createTinyBundle(changed, { seed: 1 });
    // the same architecture with other weights: every file the same size, the contents not
    expectCode(() => readLearnedConcepts(dir, { backboneDir: changed }), 'ARTIFACT_MISMATCH', /unet\/model\.onnx has the same size but other contents/);
    // a manifest written before the fingerprint sampled contents compares sizes only
    const file = join(dir, 'manifest.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    delete m.backbone.fingerprint.fileSamples;
    writeFileSync(file, JSON.stringify(m));
    expect(readLearnedConcepts(dir, { backboneDir: changed }).tokens).toEqual(concepts().tokens);
    writeFileSync(join(changed, 'unet', 'model.onnx'), new Uint8Array(10));
    expectCode(() => readLearnedConcepts(dir, { backboneDir: changed }), 'ARTIFACT_MISMATCH', /unet\/model\.onnx has 10 bytes/);
    const c = concepts();
    c.adapters.delete('unet.q.lora_B');
    expectCode(() => writeLearnedConcepts(dir, c), 'ARTIFACT_MISMATCH', /missing unet\.q\.lora_B/);
    expectCode(() => writeLearnedConcepts(dir, { ...concepts(), embeddings: f32([3, 64], () => 0) }), 'ARTIFACT_MISMATCH', /\[2, D\]/);
  });

  it("samples a large file's bytes from its first to its last: a change anywhere larger than the chunks' spacing is seen", () => {
    const file = join(root, 'weights.bin');
    const size = 3 * 1024 * 1024 + 17; // larger than the bytes sampled (SAMPLE_CHUNKS x SAMPLE_CHUNK_BYTES)
    expect(size).toBeGreaterThan(SAMPLE_CHUNKS * SAMPLE_CHUNK_BYTES);
    const bytes = Buffer.alloc(size, 7);
    writeFileSync(file, bytes);
    const base = sampleFileHash(file);
    expect(sampleFileHash(file)).toBe(base);
    const spacing = Math.ceil(size / (SAMPLE_CHUNKS - 1));
    for (const [at, length] of [
      [0, 1], // the first byte
      [size - 1, 1], // the last
      [Math.floor(size / 2) - spacing / 2, spacing], // a tensor of the spacing's size anywhere
      [12345, spacing],
    ] as const) {
      const edited = Buffer.from(bytes);
      edited.fill(9, at, at + length);
      writeFileSync(file, edited);
      expect(sampleFileHash(file)).not.toBe(base);
    }
    // a small file is hashed whole
    writeFileSync(file, Buffer.from('abc'));
    expect(sampleFileHash(file)).toBe(createHash('sha256').update('abc').digest('hex'));
  });

  it('reports a missing embeddings file clearly', () => {
    const dir = newRun('missing');
    expectCode(() => readLearnedConcepts(dir), 'MISSING_ARTIFACT', /embeddings\.safetensors does not exist/);
  });
});

describe('metrics', () => {
  const row = (phase: 1 | 2, step: number, v: number): StepMetrics => ({
    phase,
    step,
    md: v,
    m2a: v,
    ica: v,
    aug: Number.NaN,
    total: v,
    lr: 1e-3,
    gradNorm: 1,
    ms: 5,
  });

  it('keeps one row per step when a resumed run repeats steps, and round-trips NaN', async () => {
    const dir = newRun('metrics');
    const rec = MetricsRecorder.open(dir);
    for (let s = 0; s < 5; s++) rec.recordStep(row(1, s, s));
    rec.flush();
    const resumed = MetricsRecorder.open(dir);
    expect(resumed.steps).toHaveLength(5);
    resumed.recordStep(row(1, 3, 30)); // resumed from the checkpoint after step 2
    resumed.recordStep(row(1, 4, 40));
    resumed.recordStep(row(2, 0, 50));
    await resumed.time('sample', async () => new Promise((r) => setTimeout(r, 20)));
    resumed.flush();
    const m = readMetrics(dir);
    expect(m.steps.map((s) => [s.phase, s.step, s.md])).toEqual([
      [1, 0, 0],
      [1, 1, 1],
      [1, 2, 2],
      [1, 3, 30],
      [1, 4, 40],
      [2, 0, 50],
    ]);
    expect(Number.isNaN(m.steps[0]!.aug)).toBe(true);
    expect(m.timings['sample']).toBeGreaterThanOrEqual(15);
    expect(JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')).steps[0].aug).toBeNull();
  });

  it('summarizes per phase: step counts, loss means over the first and last ten steps, attention, timings', () => {
    const rec = new MetricsRecorder(join(newRun('summary'), 'metrics.json'));
    for (let s = 1; s <= 25; s++) rec.recordStep(row(1, s, s));
    for (let s = 1; s <= 4; s++) rec.recordStep(row(2, s, 100 * s));
    rec.addTiming('train', 1234.4);
    const att = { token: '<asset0>', massInMask: 0.5, iou: 0.25, maskShare: 0.3 };
    rec.setAttention('after', [att]);
    const sum = summarizeMetrics(rec.toJSON());
    expect(sum.steps).toEqual({ phase1: 25, phase2: 4 });
    expect(sum.loss.phase1!.first.md).toBeCloseTo(5.5, 12); // mean of 1..10
    expect(sum.loss.phase1!.last.total).toBeCloseTo(20.5, 12); // mean of 16..25
    expect(sum.loss.phase2!.first.m2a).toBeCloseTo(250, 12); // fewer than ten steps: all four
    expect(sum.loss.phase1!.first.aug).toBeNull(); // NaN in, null out (JSON)
    expect(sum.attention).toEqual({ after: [att] });
    expect(sum.timingsMs).toEqual({ train: 1234 });
    expect(summarizeMetrics({ version: 1, steps: [], timings: {}, attention: {} })).toEqual({
      steps: { phase1: 0, phase2: 0 },
      loss: {},
      attention: {},
      timingsMs: {},
    });
  });

  it('measures attention against a mask (hand-computed)', () => {
    // 4x4 grid; mask = left half (8 cells). Map: 1 on the 4 cells of column 0, 0.25 on the 4 of column 3.
    const map = new Float32Array(16);
    for (let y = 0; y < 4; y++) {
      map[y * 4] = 1;
      map[y * 4 + 3] = 0.25;
    }
    const mask = rectMask(8, 0, 0, 4, 8); // 8x8 mask, left half: resized to 4x4 it is columns 0-1
    const r = attentionVsMask('<asset0>', map, 4, 4, mask);
    expect(r.massInMask).toBeCloseTo(4 / 5, 6);
    expect(r.iou).toBeCloseTo(4 / 8, 6); // thresholded map = column 0 (4 cells) inside the 8-cell mask
    expect(r.maskShare).toBe(0.5);
  });
});

describe('samples', () => {
  it('writes numbered PNGs and an index with settings, then adds metrics', async () => {
    const dir = newRun('samples');
    await writeSamples(
      dir,
      [
        { prompt: 'a <asset0>', classPrompt: 'a panda', category: 'plain', seed: 1, image: syntheticImage(16, 1) },
        { prompt: 'a <asset1>', classPrompt: 'a bowl', category: 'action', seed: 2, image: syntheticImage(16, 2) },
      ],
      { steps: 20, guidance: 7.5, scheduler: 'ddim' },
    );
    const s = readSamples(dir);
    expect(s.map((e) => e.file)).toEqual(['samples/000.png', 'samples/001.png']);
    expect(s[1]).toMatchObject({ seed: 2, steps: 20, guidance: 7.5, scheduler: 'ddim', category: 'action' });
    expect(readFileSync(join(dir, 'samples/001.png')).subarray(1, 4).toString()).toBe('PNG');
    writeSampleMetrics(dir, [
      { clipT: 0.2, clipI: null },
      { clipT: 0.3, clipI: 0.9 },
    ]);
    expect(readSamples(dir)[1]!.metrics).toEqual({ clipT: 0.3, clipI: 0.9 });
  });
});
