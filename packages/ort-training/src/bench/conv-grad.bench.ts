/**
 * Micro-benchmark (not a test): forward + weight gradient of one Conv, per weight-gradient formulation
 * (`convWeightGradientOptions.strategy`), interleaved so that load changes hit every variant alike.
 *
 *   node dist/bench/conv-grad.bench.js [--threads 2 --rounds 7 --iters 15] [--input: input-gradient variants instead]
 */
import * as ort from 'onnxruntime-node';
import { Graph, attrs } from '../graph.js';
import { serializeModel, type OnnxModel } from '../model.js';
import { deriveGradientGraph } from '../autodiff.js';
import { convInputGradientOptions, convWeightGradientOptions } from '../ops/conv.js';
import { DataType, numel, tensorBytes, fromNumbers } from '../tensor.js';

type Strategy = typeof convWeightGradientOptions.strategy;
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rand = (n: number) => {
  let s = 7;
  return Float32Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647 - 0.5;
  });
};

/** loss = ReduceSum(conv(x, W) * R); W an initializer (a trainable one when `wrt`). */
function convModel(x: number[], w: number[], stride: number, pad: number): { model: OnnxModel; yDims: number[] } {
  const g = new Graph({ name: 'conv' });
  const ho = Math.floor((x[2]! + 2 * pad - w[2]!) / stride) + 1,
    wo = Math.floor((x[3]! + 2 * pad - w[3]!) / stride) + 1;
  const yDims = [x[0]!, w[0]!, ho, wo];
  g.addInput({ name: 'x', dtype: DataType.FLOAT, shape: x });
  for (const [name, dims] of [
    ['W', w],
    ['R', yDims],
  ] as const) {
    g.addInitializer({ name, dtype: DataType.FLOAT, dims: [...dims], data: tensorBytes(fromNumbers(DataType.FLOAT, [...dims], rand(numel(dims)))) });
  }
  g.addNode({
    opType: 'Conv',
    inputs: ['x', 'W'],
    outputs: ['y'],
    attributes: attrs({ kernel_shape: w.slice(2), strides: [stride, stride], pads: [pad, pad, pad, pad] }),
  });
  g.addNode({ opType: 'Mul', inputs: ['y', 'R'], outputs: ['yr'] });
  g.addNode({ opType: 'ReduceSum', inputs: ['yr'], outputs: ['loss'], attributes: attrs({ keepdims: 0 }) });
  g.addOutput({ name: 'loss', dtype: DataType.FLOAT });
  return {
    model: { irVersion: 8, opsetImports: [{ domain: '', version: 17 }], producerName: 'bench', producerVersion: '', graph: g, metadata: {}, extra: {} },
    yDims,
  };
}

async function main() {
  const threads = arg('threads', 2),
    rounds = arg('rounds', 7),
    iters = arg('iters', 15);
  const cases: [string, number[], number[], number, number][] = [
    // the fixture's layers (N=2)
    ['16x16 C32->32 3x3', [2, 32, 16, 16], [32, 32, 3, 3], 1, 1],
    ['16x16 C72->32 3x3', [2, 72, 16, 16], [32, 72, 3, 3], 1, 1],
    ['8x8 C40->80 3x3', [2, 40, 8, 8], [80, 40, 3, 3], 1, 1],
    ['16x16 C32->32 3x3 s2', [2, 32, 16, 16], [32, 32, 3, 3], 2, 1],
    ['16x16 C32->4 3x3', [2, 32, 16, 16], [4, 32, 3, 3], 1, 1],
    ['16x16 C72->32 1x1', [2, 72, 16, 16], [32, 72, 1, 1], 1, 0],
    // larger, compute-bound
    ['64x64 C64->64 3x3', [2, 64, 64, 64], [64, 64, 3, 3], 1, 1],
    ['32x32 C128->128 3x3', [2, 128, 32, 32], [128, 128, 3, 3], 1, 1],
    ['64x64 C64->64 3x3 s2', [2, 64, 64, 64], [64, 64, 3, 3], 2, 1],
  ];
  const strategies: Strategy[] = ['conv', 'im2col', 'patches'];
  const inputStrategies: (typeof convInputGradientOptions.strategy)[] = ['conv', 'convtranspose'];
  const inputGrad = process.argv.includes('--input');
  console.log(
    `conv forward + ${inputGrad ? 'input gradient (trainable weight)' : 'weight gradient'}, ms (median of ${rounds} rounds x median of ${iters}), ${threads} threads`,
  );
  console.log(
    `${'case'.padEnd(24)} ${'forward'.padStart(8)} ${'fwd(W in)'.padStart(9)} ${(inputGrad ? inputStrategies.map((s) => `dx:${s}`) : strategies).map((s) => s.padStart(8)).join(' ')}`,
  );
  for (const [name, x, w, stride, pad] of cases) {
    const { model } = convModel(x, w, stride, pad);
    const opts = { intraOpNumThreads: threads, interOpNumThreads: 1 };
    const sessions: [string, ort.InferenceSession][] = [['forward', await ort.InferenceSession.create(serializeModel(model), opts)]];
    // The same forward with W a graph input, as in a training graph (no constant-weight conv kernels).
    const fwIn = convModel(x, w, stride, pad).model;
    fwIn.graph.promoteInitializerToInput('W');
    sessions.push(['fwd(W in)', await ort.InferenceSession.create(serializeModel(fwIn), opts)]);
    if (!inputGrad) {
      for (const s of strategies) {
        convWeightGradientOptions.strategy = s;
        sessions.push([s, await ort.InferenceSession.create(serializeModel(deriveGradientGraph(model, { loss: 'loss', wrt: ['W'] }).model), opts)]);
      }
      convWeightGradientOptions.strategy = 'auto';
    } else {
      // Input gradient with a trainable (non-constant) weight: the kernel flip runs every step.
      for (const s of inputStrategies) {
        convInputGradientOptions.strategy = s;
        sessions.push([`dx:${s}`, await ort.InferenceSession.create(serializeModel(deriveGradientGraph(fwIn, { loss: 'loss', wrt: ['x'] }).model), opts)]);
      }
      convInputGradientOptions.strategy = 'conv';
    }
    const all: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', rand(numel(x)), x), W: new ort.Tensor('float32', rand(numel(w)), w) };
    const feedsOf = (s: ort.InferenceSession) => Object.fromEntries(s.inputNames.map((n) => [n, all[n]!]));
    const times = new Map<string, number[]>(sessions.map(([k]) => [k, []]));
    for (const [, s] of sessions) for (let i = 0; i < 3; i++) await s.run(feedsOf(s));
    for (let r = 0; r < rounds; r++) {
      for (const [k, s] of sessions) {
        const t: number[] = [],
          feeds = feedsOf(s);
        for (let i = 0; i < iters; i++) {
          const t0 = performance.now();
          await s.run(feeds);
          t.push(performance.now() - t0);
        }
        times.get(k)!.push(median(t));
      }
    }
    console.log(
      `${name.padEnd(24)} ${sessions
        .map(([k]) =>
          median(times.get(k)!)
            .toFixed(3)
            .padStart(k.length > 8 ? k.length : 8),
        )
        .join(' ')}`,
    );
    for (const [, s] of sessions) await s.release();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
