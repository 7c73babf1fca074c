/**
 * The losses train through ort-training (a few AdamW steps on one fixed batch lower them), and a run
 * stopped and resumed from its checkpoint ends with the weights of an uninterrupted run, bit for bit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipTokenizer } from '@dynasyn/diffusion';
import { DataType, TrainingSession, type Feed } from '@dynasyn/ort-training';
import { buildClipTrainingNet, clipDims } from './clip-net.js';
import { clipBatch, clipTokenizerFiles } from './clip.js';
import { FINDER_CLASSES, FINDER_GRID, LOGITS } from './heads.js';
import { judgeBatch } from './judge-data.js';
import { buildJudgeTrainingNet, type JudgeWidths } from './judge-net.js';
import { trainJudgeWeights } from './train-judge.js';
import { createOptimizer, type TrainRunOptions } from './train-loop.js';

const TINY: JudgeWidths = { classifier: [8, 8, 16], texture: [8, 8], hidden: 16, finder: [8, 8] };
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'toyworld-judge-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function lossesOnFixedBatch(model: TrainingSession, feeds: Record<string, Feed>, steps: number, lr: number): Promise<number[]> {
  const opt = createOptimizer({ lr, steps: 1000, warmup: 1 }, 0);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await model.trainStep(feeds, opt)).loss);
  losses.push((await model.step(feeds)).loss);
  return losses;
}

describe('losses through ort-training', () => {
  it('judge: cross-entropy of the heads and of the finder cells fall on a fixed batch', async () => {
    const B = 4;
    const net = buildJudgeTrainingNet(B, 'test', undefined, TINY);
    const session = await TrainingSession.create({
      model: net.model('test'),
      loss: 'loss',
      trainable: net.params,
      keepOutputs: ['loss_cls', 'loss_find'],
      cacheDir: join(dir, 'cache'),
      sessionOptions: { intraOpNumThreads: 1 },
    });
    const b = judgeBatch('test', 0, B);
    const f = (dims: number[], data: Float32Array) => ({ dtype: DataType.FLOAT, dims, data });
    const feeds = {
      image: f([B, 3, 64, 64], b.image),
      crop: f([B, 4, 32, 32], b.crop),
      scene: f([B, 5, 32, 32], b.scene),
      patch: f([B, 4, 32, 32], b.patch),
      targets: f([B, LOGITS], b.targets),
      cells: f([B, FINDER_CLASSES.length, FINDER_GRID, FINDER_GRID], b.cells),
    };
    const first = await session.step(feeds);
    const losses = await lossesOnFixedBatch(session, feeds, 8, 1e-2);
    const last = await session.step(feeds);
    // every head starts near uniform: the classifier's loss is about the sum of log(label count) over its set targets
    expect(first.loss).toBeGreaterThan(5);
    expect(losses.at(-1)!).toBeLessThan(0.6 * losses[0]!);
    expect(Number(last.outputs.get('loss_cls')!.data[0])).toBeLessThan(Number(first.outputs.get('loss_cls')!.data[0]));
    expect(Number(last.outputs.get('loss_find')!.data[0])).toBeLessThan(Number(first.outputs.get('loss_find')!.data[0]));
    await session.release();
  });

  it('CLIP: the symmetric InfoNCE loss falls on a fixed batch and the temperature is trained', async () => {
    const B = 6;
    const files = clipTokenizerFiles('test', 100);
    const tokenizer = new ClipTokenizer(files);
    const d = clipDims(tokenizer.vocabSize, { embed: 16, tokenWidth: 16, textWidth: 16, vision: [8, 8, 16] });
    const net = buildClipTrainingNet(B, d, 'test');
    const session = await TrainingSession.create({
      model: net.model('test'),
      loss: 'loss',
      trainable: net.params,
      cacheDir: join(dir, 'cache'),
      sessionOptions: { intraOpNumThreads: 1 },
    });
    const b = clipBatch(tokenizer, d, 'test', 0, B);
    const feeds = {
      pixel_values: { dtype: DataType.FLOAT, dims: [B, 3, 64, 64], data: b.pixels },
      input_ids: { dtype: DataType.INT64, dims: [B, d.context], data: b.ids },
      attention_mask: { dtype: DataType.INT64, dims: [B, d.context], data: b.mask },
      targets: { dtype: DataType.FLOAT, dims: [B, B], data: b.targets },
    };
    const scale0 = session.getTrainable('logit_scale').data[0];
    const losses = await lossesOnFixedBatch(session, feeds, 10, 1e-2);
    expect(losses[0]!).toBeGreaterThan(0.5 * Math.log(B));
    expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]!);
    expect(session.getTrainable('logit_scale').data[0]).not.toBe(scale0);
    await session.release();
  });
});

describe('checkpoints', () => {
  const options = (name: string): TrainRunOptions => ({
    seed: 3,
    steps: 4,
    batch: 2,
    lr: 3e-3,
    work: join(dir, name),
    out: join(dir, name, 'out'),
    threads: 1,
    evalCount: 0,
  });

  it('a run stopped after each step and resumed ends with the weights of an uninterrupted run', async () => {
    const whole = await trainJudgeWeights(options('whole'), TINY);
    expect(whole.finished).toBe(true);
    let run;
    for (let stop = 0; ; stop++) {
      run = await trainJudgeWeights({ ...options('resumed'), stopAfter: stop }, TINY);
      if (run.finished) break;
      expect(run.nextStep).toBe(stop + 1);
    }
    for (const [name, t] of whole.weights)
      expect(Buffer.from((run.weights.get(name)!.data as Float32Array).buffer)).toEqual(Buffer.from((t.data as Float32Array).buffer));
    // and the training really moved the weights
    const fresh = await trainJudgeWeights({ ...options('fresh'), steps: 0 }, TINY);
    expect([...fresh.weights].some(([n, t]) => t.data.some((v, i) => v !== whole.weights.get(n)!.data[i]))).toBe(true);
  });
});
