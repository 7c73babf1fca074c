/** The tiny UNet trains through @dynasyn/ort-training: gradients derive, agree with finite differences, and a step is fast. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, TrainingSession, serializeModel, type HostTensor, type OnnxModel } from '@dynasyn/ort-training';
import { buildTinyUnet } from './index.js';
import { normals } from './prng.js';

const SHAPES = { sample: [1, 4, 32, 32], timestep: [1], encoder_hidden_states: [1, 77, 64] };
const f32 = (key: string, dims: number[]): HostTensor => ({
  dtype: DataType.FLOAT,
  dims,
  data: normals(
    `train-test/${key}`,
    dims.reduce((a, b) => a * b, 1),
    1,
  ),
});
const sample = f32('sample', SHAPES.sample);
const context = f32('context', SHAPES.encoder_hidden_states);
const timestep: HostTensor = { dtype: DataType.INT64, dims: [1], data: BigInt64Array.of(321n) };

/** The UNet plus loss = ReduceMean(out_sample^2) as a graph output. */
function unetWithLoss(): OnnxModel {
  const model = buildTinyUnet(0);
  const g = model.graph;
  g.addNode({ name: '/loss/Mul', opType: 'Mul', inputs: ['out_sample', 'out_sample'], outputs: ['/loss/Mul_output_0'] });
  g.addNode({
    name: '/loss/ReduceMean',
    opType: 'ReduceMean',
    inputs: ['/loss/Mul_output_0'],
    outputs: ['loss'],
    attributes: [{ name: 'keepdims', type: 2, i: 0 }],
  });
  g.addOutput({ name: 'loss', dtype: DataType.FLOAT, shape: [] });
  return model;
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tiny-train-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('tiny UNet training', () => {
  it('derives d loss / d encoder_hidden_states (agreeing with finite differences) and steps fast on one thread', async () => {
    // TrainingSession derives its graph with deriveGradientGraph (loss ReduceMean(out_sample^2), batch 1)
    const model = unetWithLoss();
    const t0 = performance.now();
    const session = await TrainingSession.create({
      model,
      loss: 'loss',
      trainable: ['encoder_hidden_states'],
      inputShapes: SHAPES,
      cacheDir: join(tmp, 'cache'),
      sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 },
    });
    const deriveMs = performance.now() - t0;
    try {
      session.setTrainable('encoder_hidden_states', context);
      const first = await session.step({ sample, timestep });
      const g = first.grads.get('encoder_hidden_states')!;
      expect(g.dims).toEqual(SHAPES.encoder_hidden_states);

      // directional derivative along a random unit direction d: (L(c + h d) - L(c - h d)) / 2h ~ <g, d>
      const fwd = await ort.InferenceSession.create(serializeModel(model), { intraOpNumThreads: 1 });
      const base = context.data as Float32Array;
      const loss = async (ctx: Float32Array) =>
        (
          (
            await fwd.run({
              sample: new ort.Tensor('float32', sample.data as Float32Array, SHAPES.sample),
              timestep: new ort.Tensor('int64', timestep.data as BigInt64Array, [1]),
              encoder_hidden_states: new ort.Tensor('float32', ctx, SHAPES.encoder_hidden_states),
            })
          ).loss!.data as Float32Array
        )[0]!;
      expect(await loss(base)).toBeCloseTo(first.loss, 5);
      const d = normals('train-test/direction', base.length, 1 / Math.sqrt(base.length));
      const h = 1e-2;
      const shifted = (s: number) => base.map((v, i) => v + s * h * d[i]!);
      const fd = ((await loss(shifted(1))) - (await loss(shifted(-1)))) / (2 * h);
      const analytic = (g.data as Float32Array).reduce((acc, v, i) => acc + v * d[i]!, 0);
      expect(Math.abs(analytic)).toBeGreaterThan(1e-5);
      expect(Math.abs(fd - analytic)).toBeLessThan(0.02 * Math.abs(analytic) + 1e-5);

      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t1 = performance.now();
        const r = await session.step({ sample, timestep });
        times.push(performance.now() - t1);
        expect(r.loss).toBeCloseTo(first.loss, 5);
      }
      console.log(`tiny UNet: derive + session ${deriveMs.toFixed(0)} ms; training step (1 thread, batch 1) ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
    } finally {
      await session.release();
    }
  });
});
