/**
 * The whole run on the 'test' preset: interrupted after every step and resumed, it writes the same bundle as
 * an uninterrupted run; the bundle loads in the product, samples, and takes the personalization graph surgery.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffusionPipeline, loadBundle } from '@dynasyn/diffusion';
import { initializerToHost, loadModel, readExternal, TrainingSession } from '@dynasyn/ort-training';
// the surgery is the trainer's internal API (not exported by @dynasyn/dynasyn): imported from its source
import { buildTrainingModel } from '../../dynasyn/src/graph/index.js';
import { MODELS } from './bundle-io.js';
import { syntheticShapesSource } from './synthetic-source.js';
import { BUNDLE_LOG, lastLinePerStep, readBundleLog, trainToyBackbone, type TrainOptions } from './train.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'toy-train-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A bundle's training log, one entry per step. */
const logOf = (bundle: string) =>
  readBundleLog(bundle)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { phase: string; step: number });
/** A bundle's latent scaling factor (vae_decoder/config.json). */
const scaling = (bundle: string) => (JSON.parse(readFileSync(join(bundle, 'vae_decoder', 'config.json'), 'utf8')) as { scaling_factor: number }).scaling_factor;

const options = (name: string): TrainOptions => ({
  out: join(dir, name, 'bundle'),
  workDir: join(dir, name, 'work'),
  seed: 5,
  preset: 'test',
  source: syntheticShapesSource(16),
  vae: { steps: 2, batch: 2, lr: 1e-3, warmup: 1, klWeight: 1e-4 },
  decoder: { steps: 2, batch: 2, lr: 1e-3, warmup: 1 },
  diffusion: { steps: 2, batch: 2, lr: 1e-3, warmup: 1, emptyCaption: 0.1 },
  tokenizerCaptions: 100,
  threads: 1,
  checkpointMinutes: 60,
});

describe("the bundle's log", () => {
  it('keeps the last line of each step a resume repeated, in log order', () => {
    const line = (phase: string, step: number, loss: number) => JSON.stringify({ phase, step, loss });
    // a diffusion run checkpointed at step 2, killed after step 3, resumed from 2; a decoder phase beside it
    const log = [
      line('diffusion', 1, 0.5),
      line('diffusion', 2, 0.4),
      line('decoder', 0, 0.9),
      line('diffusion', 3, 0.3),
      line('diffusion', 2, 0.41),
      line('diffusion', 3, 0.31),
    ]
      .map((l) => `${l}\n`)
      .join('');
    expect(lastLinePerStep(log)).toBe(
      [line('diffusion', 1, 0.5), line('decoder', 0, 0.9), line('diffusion', 2, 0.41), line('diffusion', 3, 0.31)].join('\n') + '\n',
    );
    expect(lastLinePerStep('')).toBe('');
  });
});

describe('toy backbone training run', () => {
  let bundleDir: string;

  it('resumed after every step, writes the same weights as an uninterrupted run', async () => {
    const whole = await trainToyBackbone(options('whole'));
    expect(whole.finished).toBe(true);
    let invocations = 0,
      finished = false;
    while (!finished && invocations < 20) {
      finished = (await trainToyBackbone({ ...options('resumed'), stopAfterMinutes: 0 })).finished;
      invocations++;
    }
    expect(finished).toBe(true);
    // stopped after every step but a phase's last (that one runs on into the next phase): vae 1, decoder 1,
    // diffusion 1; the resumed run does the rest of the decoder phase before its export
    expect(invocations).toBe(4);
    for (const m of MODELS) {
      const a = readFileSync(join(options('whole').out, m, 'model.onnx'));
      const b = readFileSync(join(options('resumed').out, m, 'model.onnx'));
      expect(b.equals(a)).toBe(true);
    }
    expect(logOf(options('resumed').out)).toHaveLength(6);
    // the bundle carries its log gzipped (the committed one's 60,000 steps are 14 MB plain), and only that
    expect(existsSync(join(options('resumed').out, BUNDLE_LOG))).toBe(true);
    expect(existsSync(join(options('resumed').out, 'train-log.jsonl'))).toBe(false);
    // the test's warmups have no CLI flag: the card must not claim a command line reproduces it
    expect(readFileSync(join(options('resumed').out, 'MODEL_CARD.md'), 'utf8')).toContain('no `npm run toyworld:train` command line reproduces it');
    bundleDir = options('whole').out;
  }, 400_000); // seconds on an idle machine, minutes on a shared one

  it('continues a finished bundle: from its weights and VAE, the data stream and log going on where they ended', async () => {
    const cont = (name: string, lr: number): TrainOptions => ({
      ...options(name),
      continueFrom: bundleDir,
      diffusion: { steps: 2, batch: 2, lr, warmup: 1, emptyCaption: 0.1 },
    });
    await expect(trainToyBackbone({ ...cont('wrong-seed', 1e-3), seed: 6 })).rejects.toThrow(/is seed 5 \(test\); continue it with --seed 5/);
    // at a learning rate of ~0 the continued weights are the bundle's: the run starts from them, not from a new init
    expect((await trainToyBackbone(cont('still', 1e-9))).finished).toBe(true);
    const weights = (b: string, m: string) => {
      const model = loadModel(join(b, m, 'model.onnx'));
      return new Map([...model.graph.initializers.values()].map((i) => [i.name, initializerToHost(i, readExternal).data as Float32Array]));
    };
    const before = weights(bundleDir, 'unet'),
      still = weights(options('still').out, 'unet');
    let maxDiff = 0;
    for (const [name, a] of before) {
      const b = still.get(name)!;
      if (!(a instanceof Float32Array)) continue;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    }
    expect(maxDiff).toBeLessThan(1e-5);
    expect(maxDiff).toBeGreaterThan(0);

    // subject-weighted: the weight is recorded, and a resume with another one is refused
    const weighted = cont('moved', 1e-3);
    const moved = await trainToyBackbone({ ...weighted, diffusion: { ...weighted.diffusion, subjectWeight: 3 } });
    expect(moved.finished).toBe(true);
    await expect(trainToyBackbone(weighted)).rejects.toThrow(/trained with --diffusion-subject-weight 3; resume it with that weight/);
    const out = options('moved').out;
    for (const m of ['vae_encoder', 'vae_decoder'])
      expect(readFileSync(join(out, m, 'model.onnx')).equals(readFileSync(join(bundleDir, m, 'model.onnx')))).toBe(true);
    expect(readFileSync(join(out, 'tokenizer', 'vocab.json'), 'utf8')).toBe(readFileSync(join(bundleDir, 'tokenizer', 'vocab.json'), 'utf8'));
    expect(readFileSync(join(out, 'unet', 'model.onnx')).equals(readFileSync(join(bundleDir, 'unet', 'model.onnx')))).toBe(false);
    const log = logOf(out);
    expect(log.slice(0, 6)).toEqual(logOf(bundleDir));
    expect(log.filter((l) => l.phase === 'diffusion').map((l) => l.step)).toEqual([0, 1, 2, 3]);
    const card = readFileSync(join(out, 'MODEL_CARD.md'), 'utf8');
    expect(card).toContain('## How it was trained: the bundle it continues');
    expect(card).toContain('2 more steps (diffusion steps 2-3');
    expect(card).toContain('as well as\n4 steps');
    expect(card).toContain("epsilon MSE with the subjects' latent cells weighted 3x");
    expect(card).toContain('--diffusion-subject-weight 3 --steps 2');
  }, 400_000);

  it('continues a bundle written before its log was compressed (a plain train-log.jsonl), and writes it gzipped', async () => {
    const legacy = join(dir, 'legacy-bundle');
    cpSync(bundleDir, legacy, { recursive: true });
    writeFileSync(join(legacy, 'train-log.jsonl'), readBundleLog(bundleDir));
    rmSync(join(legacy, BUNDLE_LOG));
    expect(logOf(legacy)).toEqual(logOf(bundleDir));
    const o = options('from-legacy');
    expect((await trainToyBackbone({ ...o, continueFrom: legacy, diffusion: { ...o.diffusion, steps: 1 } })).finished).toBe(true);
    expect(existsSync(join(o.out, 'train-log.jsonl'))).toBe(false);
    const log = logOf(o.out);
    expect(log.slice(0, 6)).toEqual(logOf(bundleDir));
    expect(log.filter((l) => l.phase === 'diffusion').map((l) => l.step)).toEqual([0, 1, 2]);
    rmSync(join(legacy, 'train-log.jsonl'));
    await expect(trainToyBackbone({ ...options('no-log'), continueFrom: legacy })).rejects.toThrow(
      /holds no training log \(train-log\.jsonl\.gz or train-log\.jsonl\)/,
    );
  }, 400_000);

  it('continues a bundle with its VAE refined first: subject-weighted, the VAE stream going on, the new latents scaled', async () => {
    const name = 'refined';
    const run = await trainToyBackbone({
      ...options(name),
      continueFrom: bundleDir,
      refineVae: 3,
      vae: { steps: 2, batch: 2, lr: 1e-3, warmup: 1, klWeight: 1e-4, subjectWeight: 8 },
      diffusion: { steps: 2, batch: 2, lr: 1e-3, warmup: 1, emptyCaption: 0.1 },
    });
    expect(run.finished).toBe(true);
    const out = options(name).out;
    // both VAE graphs moved, the tokenizer did not
    for (const m of ['vae_encoder', 'vae_decoder'])
      expect(readFileSync(join(out, m, 'model.onnx')).equals(readFileSync(join(bundleDir, m, 'model.onnx')))).toBe(false);
    expect(readFileSync(join(out, 'tokenizer', 'vocab.json'), 'utf8')).toBe(readFileSync(join(bundleDir, 'tokenizer', 'vocab.json'), 'utf8'));
    const log = logOf(out);
    // the bundle's VAE steps 0-1, then 2-4 of the refinement; diffusion 0-1, then 2-3
    expect(log.filter((l) => l.phase === 'vae').map((l) => l.step)).toEqual([0, 1, 2, 3, 4]);
    expect(log.filter((l) => l.phase === 'diffusion').map((l) => l.step)).toEqual([0, 1, 2, 3]);
    // the scaling factor is measured again on the refined encoder's latents
    expect(scaling(out)).not.toBe(scaling(bundleDir));
    expect((JSON.parse(readFileSync(join(out, 'unet', 'config.json'), 'utf8')) as { in_channels: number }).in_channels).toBe(4);
    const card = readFileSync(join(out, 'MODEL_CARD.md'), 'utf8');
    expect(card).toContain('--refine-vae 3 --vae-batch 2 --vae-lr 0.001 --subject-weight 8 --steps 2');
    expect(card).toContain('VAE refined (this bundle): encoder and decoder from that VAE, 3 more steps (VAE steps 2-4');
    expect(card).toContain("the subjects' pixels (and the pixel around them) weighted 8x in the MSE");
  }, 400_000);

  it("refines a bundle's decoder on its frozen latents, alone or beside the diffusion phase, and writes the bundle with it", async () => {
    const cont = (name: string, refineDecoder: number, onlyDecoder = false): TrainOptions => ({
      ...options(name),
      continueFrom: bundleDir,
      refineDecoder,
      onlyDecoder,
      vae: { steps: 2, batch: 2, lr: 1e-3, warmup: 1, klWeight: 1e-4, subjectWeight: 8 },
    });
    const bytes = (b: string, m: string) => readFileSync(join(b, m, 'model.onnx'));
    // the decoder phase starts the continuation and stops for time after a step; the diffusion run then resumes
    // the same work directory, and finishes the decoder phase before it writes the bundle
    expect((await trainToyBackbone({ ...cont('decoder-first', 3, true), stopAfterMinutes: 0 })).finished).toBe(false);
    expect((await trainToyBackbone(cont('decoder-first', 3))).finished).toBe(true);
    const out = options('decoder-first').out;
    expect(bytes(out, 'vae_encoder').equals(bytes(bundleDir, 'vae_encoder'))).toBe(true);
    expect(bytes(out, 'vae_decoder').equals(bytes(bundleDir, 'vae_decoder'))).toBe(false);
    expect(bytes(out, 'unet').equals(bytes(bundleDir, 'unet'))).toBe(false);
    expect(scaling(out)).toBe(scaling(bundleDir));
    const log = logOf(out);
    // the bundle's decoder steps 0-1, then 2-4 of the refinement (the stream goes on)
    expect(log.filter((l) => l.phase === 'decoder').map((l) => l.step)).toEqual([0, 1, 2, 3, 4]);
    expect(log.filter((l) => l.phase === 'diffusion').map((l) => l.step)).toEqual([0, 1, 2, 3]);
    const card = readFileSync(join(out, 'MODEL_CARD.md'), 'utf8');
    expect(card).toContain('VAE decoder refined (this bundle): from that decoder');
    expect(card).toContain('3 more steps (decoder\n  steps 2-4');
    expect(card).toContain("MSE with the subjects' pixels (and the pixel around them) weighted 8x");
    expect(card).toContain('--refine-decoder 3 --decoder-batch 2 --decoder-lr 0.001 --subject-weight 8 --steps 2');

    // the other order: the diffusion run writes its bundle first, the decoder phase finishing later writes it again
    expect((await trainToyBackbone(cont('decoder-after', 0))).finished).toBe(true);
    const after = options('decoder-after').out;
    expect(bytes(after, 'vae_decoder').equals(bytes(bundleDir, 'vae_decoder'))).toBe(true);
    const unet = bytes(after, 'unet');
    expect((await trainToyBackbone(cont('decoder-after', 2, true))).finished).toBe(true);
    expect(bytes(after, 'vae_decoder').equals(bytes(bundleDir, 'vae_decoder'))).toBe(false);
    expect(bytes(after, 'unet').equals(unet)).toBe(true);
    expect(readFileSync(join(after, 'MODEL_CARD.md'), 'utf8')).toContain(
      '--refine-decoder 2 --decoder-batch 2 --decoder-lr 0.001 --subject-weight 8 --steps 2',
    );

    // the refinement alone (--steps 0): only the decoder changes, and the card says the UNet is the bundle's
    expect((await trainToyBackbone({ ...cont('decoder-alone', 2), diffusion: { ...options('decoder-alone').diffusion, steps: 0 } })).finished).toBe(true);
    const alone = options('decoder-alone').out;
    for (const m of ['unet', 'text_encoder', 'vae_encoder']) expect(bytes(alone, m).equals(bytes(bundleDir, m))).toBe(true);
    expect(bytes(alone, 'vae_decoder').equals(bytes(bundleDir, 'vae_decoder'))).toBe(false);
    const aloneCard = readFileSync(join(alone, 'MODEL_CARD.md'), 'utf8');
    expect(aloneCard).not.toContain('Continued (this bundle)');
    expect(aloneCard).toContain('Text encoder + UNet (this bundle): those of the bundle it continues, unchanged (diffusion steps 0-1)');
  }, 400_000);

  it('trains a wider decoder afresh on the same latents: the bundle loads and decodes, and a continuation of it keeps it', async () => {
    const wide = (name: string, decoderChannels: number[], extra: Partial<TrainOptions> = {}): TrainOptions => ({
      ...options(name),
      continueFrom: bundleDir,
      refineDecoder: 2,
      decoderChannels,
      onlyDecoder: true,
      ...extra,
    });
    const config = (b: string) =>
      JSON.parse(readFileSync(join(b, 'vae_decoder', 'config.json'), 'utf8')) as { block_out_channels: number[]; scaling_factor: number };
    expect((await trainToyBackbone({ ...wide('wide', [16, 16, 32]), stopAfterMinutes: 0 })).finished).toBe(false);
    await expect(trainToyBackbone(wide('wide', [16, 32, 32]))).rejects.toThrow(/holds a decoder phase with --decoder-channels 16,16,32/);
    expect((await trainToyBackbone({ ...wide('wide', [16, 16, 32]), onlyDecoder: false })).finished).toBe(true);
    const out = options('wide').out;
    expect(config(out).block_out_channels).toEqual([16, 16, 32]);
    expect(config(out).scaling_factor).toBe(config(bundleDir).scaling_factor);
    expect(readFileSync(join(out, 'vae_encoder', 'model.onnx')).equals(readFileSync(join(bundleDir, 'vae_encoder', 'model.onnx')))).toBe(true);
    const card = readFileSync(join(out, 'MODEL_CARD.md'), 'utf8');
    expect(card).toContain('a fresh decoder of block_out_channels [16,16,32] (seeded)');
    expect(card).toContain('--refine-decoder 2 --decoder-channels 16,16,32 --decoder-batch 2 --decoder-lr 0.001 --steps 2');
    expect(card).toMatch(/decoder \(block_out_channels \[16,16,32\]\) [0-9.]+ M parameters/);
    // the product decodes with it: latents of the bundle's shape in, an image of the bundle's size out
    const pipeline = await DiffusionPipeline.create(out, { intraOpNumThreads: 1 });
    try {
      const [image] = await pipeline.decodeLatents(await pipeline.encodeImages({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(128) }, 1));
      expect([image!.width, image!.height]).toEqual([16, 16]);
    } finally {
      await pipeline.release();
    }
    // a continuation of the wide bundle keeps its decoder, and says so
    expect((await trainToyBackbone({ ...options('wide-next'), continueFrom: out })).finished).toBe(true);
    const next = options('wide-next').out;
    expect(config(next).block_out_channels).toEqual([16, 16, 32]);
    expect(readFileSync(join(next, 'vae_decoder', 'model.onnx')).equals(readFileSync(join(out, 'vae_decoder', 'model.onnx')))).toBe(true);
    expect(readFileSync(join(next, 'MODEL_CARD.md'), 'utf8')).toMatch(/decoder \(block_out_channels \[16,16,32\]\)/);
  }, 400_000);

  it('writes a bundle the product loads and samples from', async () => {
    const bundle = loadBundle(bundleDir);
    expect(bundle.sampleSize).toBe(16);
    expect(bundle.vaeScaleFactor).toBe(4);
    const index = JSON.parse(readFileSync(join(bundleDir, 'model_index.json'), 'utf8')) as Record<string, unknown>;
    expect(index['_random_weights']).toBeUndefined();
    const pipeline = await DiffusionPipeline.create(bundleDir, { intraOpNumThreads: 1 });
    try {
      const result = await pipeline.textToImage({ prompt: 'a red circle on a white background', steps: 2, seed: 1 });
      const image = result.images[0]!;
      expect([image.width, image.height]).toEqual([16, 16]);
      expect(image.data.length).toBe(16 * 16 * 3);
    } finally {
      await pipeline.release();
    }
  });

  it('takes the personalization graph surgery: placeholder rows, attention capture, LoRA on q/k/v', async () => {
    const bundle = loadBundle(bundleDir);
    const tokenizerSize = Object.keys(JSON.parse(readFileSync(join(bundleDir, 'tokenizer', 'vocab.json'), 'utf8')) as object).length;
    const t = buildTrainingModel(bundle, { numPlaceholders: 2, baseVocabSize: tokenizerSize, phase: 2, grid: [4, 4] });
    expect(t.grid).toEqual([4, 4]);
    expect(t.trainable[0]).toBe('placeholder_embeddings');
    // adapters on the UNet's attention projections (two attention layers x q, k, v, out at least) and the text encoder's
    expect(t.adapters.filter((a) => a.model === 'unet').length).toBeGreaterThanOrEqual(8);
    expect(t.adapters.filter((a) => a.model === 'text_encoder').length).toBeGreaterThanOrEqual(4);
    await TrainingSession.prepare({ model: t.model, loss: t.outputs.loss, trainable: t.trainable, cacheDir: join(dir, 'cache') });
  });
});
