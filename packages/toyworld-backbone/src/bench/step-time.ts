/**
 * All-weights training step time of each toy-world model at a batch size, on this machine, against a bare
 * forward of the same graph: `node dist/bench/step-time.js [batch] [threads] [preset]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { createSdBundle } from '@dynasyn/diffusion';
import { DataType, loadModel, TrainingSession, type HostTensor, type OnnxModel } from '@dynasyn/ort-training';
import { toyBundleConfig, type ToyPreset } from '../config.js';
import { floatWeights, LOSS, UPSTREAM_GRAD, withMseLoss, withSurrogateLoss } from '../training-graphs.js';

const batch = Number(process.argv[2] ?? 16);
const threads = Number(process.argv[3] ?? 2);
const preset = (process.argv[4] ?? 'toy') as ToyPreset;
const vocab = 2048;
const config = toyBundleConfig(vocab, preset);
const dir = mkdtempSync(join(tmpdir(), 'toy-bench-'));
// SPIN=0: intra-op threads sleep instead of spinning between parallel sections (onnxruntime's session.intra_op.allow_spinning)
const sessionOptions = {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  ...(process.env.SPIN === '0' ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
};

const rand = (dims: number[]): HostTensor => {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.random() * 2 - 1;
  return { dtype: DataType.FLOAT, dims, data };
};

async function measure(name: string, model: OnnxModel, forward: string, feeds: Record<string, HostTensor>, trainable: string[], inputs: string[]) {
  const shapes = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.dims]));
  const params = floatWeights(model).reduce((a, n) => a + model.graph.initializers.get(n)!.dims.reduce((x, y) => x * y, 1), 0);
  const t0 = performance.now();
  const session = await TrainingSession.create({ model, loss: LOSS, trainable, inputShapes: shapes, cacheDir: join(dir, 'cache'), sessionOptions });
  const derive = performance.now() - t0;
  for (const i of inputs) session.setTrainable(i, feeds[i]!);
  const stepFeeds = Object.fromEntries(Object.entries(feeds).filter(([k]) => !inputs.includes(k)));
  const times: number[] = [];
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    await session.step(stepFeeds);
    times.push(performance.now() - t);
  }
  await session.release();
  const fwd = await ort.InferenceSession.create(forward, sessionOptions);
  const fwdFeeds: Record<string, ort.Tensor> = {};
  for (const n of fwd.inputNames) {
    const t = feeds[n]!;
    fwdFeeds[n] = new ort.Tensor(t.dtype === DataType.INT64 ? 'int64' : 'float32', t.data as Float32Array, t.dims);
  }
  const ftimes: number[] = [];
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    await fwd.run(fwdFeeds);
    ftimes.push(performance.now() - t);
  }
  await fwd.release();
  const best = (a: number[]) => Math.min(...a.slice(1));
  console.log(
    `${name}: ${(params / 1e6).toFixed(2)} M params, batch ${batch}: derive+open ${(derive / 1000).toFixed(1)} s, step ${times.map((t) => t.toFixed(0)).join('/')} ms, forward ${ftimes.map((t) => t.toFixed(0)).join('/')} ms, ratio ${(best(times) / best(ftimes)).toFixed(2)}`,
  );
}

try {
  await createSdBundle(dir, { config, seed: 0 });
  const L = config.textEncoder.maxPositions,
    D = config.textEncoder.hiddenSize,
    lat = config.sampleSize / 4;
  const ids: HostTensor = { dtype: DataType.INT64, dims: [batch, L], data: BigInt64Array.from({ length: batch * L }, (_, i) => BigInt(i % vocab)) };
  const steps: HostTensor = { dtype: DataType.INT64, dims: [batch], data: BigInt64Array.from({ length: batch }, (_, i) => BigInt(i * 37)) };
  const which = process.argv[5] ?? 'unet,text,dec,enc';
  if (which.includes('unet')) {
    const unet = withMseLoss(loadModel(join(dir, 'unet/model.onnx')), 'out_sample', 'target');
    const feeds = { sample: rand([batch, 4, lat, lat]), timestep: steps, encoder_hidden_states: rand([batch, L, D]), target: rand([batch, 4, lat, lat]) };
    await measure('unet', unet, join(dir, 'unet/model.onnx'), feeds, [...floatWeights(unet), 'encoder_hidden_states'], ['encoder_hidden_states']);
  }
  if (which.includes('text')) {
    const te = withSurrogateLoss(loadModel(join(dir, 'text_encoder/model.onnx')), 'last_hidden_state');
    await measure('text_encoder', te, join(dir, 'text_encoder/model.onnx'), { input_ids: ids, [UPSTREAM_GRAD]: rand([batch, L, D]) }, floatWeights(te), []);
  }
  if (which.includes('dec')) {
    const dec = withMseLoss(loadModel(join(dir, 'vae_decoder/model.onnx')), 'sample', 'target');
    const feeds = { latent_sample: rand([batch, 4, lat, lat]), target: rand([batch, 3, config.sampleSize, config.sampleSize]) };
    await measure('vae_decoder', dec, join(dir, 'vae_decoder/model.onnx'), feeds, [...floatWeights(dec), 'latent_sample'], ['latent_sample']);
  }
  if (which.includes('enc')) {
    const enc = withSurrogateLoss(loadModel(join(dir, 'vae_encoder/model.onnx')), 'latent_sample');
    const feeds = { sample: rand([batch, 3, config.sampleSize, config.sampleSize]), [UPSTREAM_GRAD]: rand([batch, 8, lat, lat]) };
    await measure('vae_encoder', enc, join(dir, 'vae_encoder/model.onnx'), feeds, floatWeights(enc), []);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
