/**
 * The GPU check of a real-size bundle, one short script for a machine with an NVIDIA GPU (issue 10):
 *
 *   node packages/dynasyn/dist/bench/gpu-check.js --bundle /tmp/sd21-base [--json out.json]
 *
 * It needs onnxruntime-node's CUDA provider, which its install script downloads only with network access
 * (`ONNXRUNTIME_NODE_INSTALL_CUDA=v12 npm ci`, as docker/Dockerfile.worker-cuda does); without it the check
 * stops at once, saying so. Then, on the GPU, each timed against a bare UNet forward at the training batch:
 * the provider loads; one phase-1 and one phase-2 training step (after one warm-up step each); one 25-step
 * sample (DDIM, guidance 7.5, batch 1 so 2 UNet rows per step). GPU memory after each part comes from
 * nvidia-smi; the process's peak RSS from the kernel.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DiffusionPipeline, GaussianRng, loadBundle, type ModelBundle } from '@dynasyn/diffusion';
import { TrainingSession, fromNumbers, type HostTensor } from '@dynasyn/ort-training';
import { buildTrainingModel } from '../graph/index.js';
import { attentionGrid, placeholderTokenizer } from '../train/setup.js';
import { sessionSpec, TRAINING_SESSION_OPTIONS } from '../train/trainer.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function gpuMemoryMiB(): number | undefined {
  try {
    return Number(execFileSync('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits'], { encoding: 'utf8' }).trim().split('\n')[0]);
  } catch {
    return undefined;
  }
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

/** Median of `runs` bare UNet forwards at batch 2 (no graph surgery), the reference the other timings are ratios of. */
async function bareUnet(bundle: ModelBundle, runs: number): Promise<number> {
  const s = await ort.InferenceSession.create(bundle.unetPath, { executionProviders: ['cuda'] });
  try {
    const side = bundle.sampleSize / bundle.vaeScaleFactor;
    const type = (name: string) => (s.inputMetadata.find((m) => m.name === name) as { type?: string } | undefined)?.type ?? 'float32';
    const floats = (dims: number[]) => {
      const n = dims.reduce((a, b) => a * b, 1),
        data = new GaussianRng(1).fill(n);
      return type(dims.length === 4 ? 'sample' : 'encoder_hidden_states') === 'float16'
        ? new ort.Tensor('float16', fromNumbers(10, dims, data).data as Uint16Array, dims)
        : new ort.Tensor('float32', data, dims);
    };
    const feeds = {
      sample: floats([2, bundle.latentChannels, side, side]),
      timestep:
        type('timestep') === 'int64' ? new ort.Tensor('int64', BigInt64Array.of(500n, 500n), [2]) : new ort.Tensor('float32', Float32Array.of(500, 500), [2]),
      encoder_hidden_states: floats([2, bundle.maxTokens, bundle.textEmbedDim]),
    };
    await s.run(feeds); // warm-up: kernels, cuDNN algorithm search
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push((await timed(() => s.run(feeds)))[1]);
    return times.sort((a, b) => a - b)[runs >> 1]!;
  } finally {
    await s.release();
  }
}

/** One warm-up and one timed step of a phase's training graph on random feeds shaped like the trainer's. */
async function trainingStep(bundle: ModelBundle, phase: 1 | 2, cacheDir: string): Promise<number> {
  const { tokenizer, baseVocabSize } = placeholderTokenizer(bundle, 2);
  const built = buildTrainingModel(bundle, {
    numPlaceholders: 2,
    maxSubjects: 2,
    baseVocabSize,
    phase,
    grid: attentionGrid(bundle, 4),
    batch: 2,
    placeholderTokenIds: [tokenizer.firstSubTokenId('dog'), tokenizer.firstSubTokenId('ball')],
  });
  const s = await TrainingSession.create({
    ...sessionSpec(built),
    cacheDir,
    executionProviders: ['cuda'],
    sessionOptions: TRAINING_SESSION_OPTIONS,
  });
  try {
    for (const [k, v] of built.startValues) s.setTrainable(k, v);
    const rng = new GaussianRng(phase);
    const feeds: Record<string, HostTensor> = {};
    for (const spec of Object.values(built.inputs)) {
      if (!spec) continue;
      const n = spec.dims.reduce((a: number, b: number) => a * b, 1);
      const values = /input_ids/.test(spec.name)
        ? Array.from({ length: n }, (_, i) => (i % 77 === 0 ? 49406 : i % 77 < 6 ? 320 + (i % 77) : 49407))
        : spec.name === 'timestep'
          ? new Array<number>(n).fill(500)
          : spec.name === 'lambdas'
            ? [1, 1e-2, 5e-3, 1e-4]
            : /select/.test(spec.name)
              ? Array.from({ length: n }, (_, i) => (i === 4 || i === 7 ? 1 : 0))
              : Array.from(rng.fill(n));
      feeds[spec.name] = fromNumbers(spec.dtype, spec.dims, values);
    }
    await s.step(feeds);
    return (await timed(() => s.step(feeds)))[1];
  } finally {
    await s.release();
  }
}

async function main(): Promise<void> {
  const dir = arg('bundle');
  if (!dir || !fs.existsSync(path.join(dir, 'model_index.json'))) {
    console.error('usage: gpu-check.js --bundle DIR (a real-size bundle: dynasyn bundle create-sd21 --out DIR) [--json FILE]');
    process.exit(2);
  }
  const report: Record<string, unknown> = { bundle: dir, host: `${os.cpus().length} cores`, onnxruntime: ort.env.versions?.common };
  const bundle = loadBundle(dir);
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-check-graphs-'));
  try {
    const [forward, loadMs] = await timed(() => bareUnet(bundle, 5));
    report.providerLoadAndFirstForward = seconds(loadMs);
    report.bareUnetForward = seconds(forward);
    report.gpuMemoryMiBAfterForward = gpuMemoryMiB();
    console.log(`CUDA provider loads; bare UNet forward at batch 2: ${seconds(forward)}`);
    for (const phase of [1, 2] as const) {
      const ms = await trainingStep(bundle, phase, cacheDir);
      report[`phase${phase}Step`] = { time: seconds(ms), xForward: +(ms / forward).toFixed(2), gpuMemoryMiB: gpuMemoryMiB() };
      console.log(`phase ${phase} training step: ${seconds(ms)} = ${(ms / forward).toFixed(2)} x the bare forward`);
    }
    const pipeline = await DiffusionPipeline.create(bundle, { executionProviders: ['cuda'] });
    try {
      await pipeline.textToImage({ prompt: 'a photo of a dog', steps: 2, guidance: 7.5, seed: 0, scheduler: 'ddim' }); // warm-up
      const [, ms] = await timed(() =>
        pipeline.textToImage({ prompt: 'a photo of a dog playing with a ball', steps: 25, guidance: 7.5, seed: 1, scheduler: 'ddim' }),
      );
      report.sample25Steps = { time: seconds(ms), perStep: seconds(ms / 25), xForwardPerStep: +(ms / 25 / forward).toFixed(2), gpuMemoryMiB: gpuMemoryMiB() };
      console.log(`25-step sample: ${seconds(ms)} (${seconds(ms / 25)} per step = ${(ms / 25 / forward).toFixed(2)} x the bare forward)`);
    } finally {
      await pipeline.release();
    }
    report.peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
    const json = arg('json');
    if (json) fs.writeFileSync(json, JSON.stringify(report, null, 2));
    console.log(JSON.stringify(report, null, 2));
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  const msg = (e as Error).message ?? String(e);
  console.error(
    /CUDA execution provider is not available/.test(msg) || /cuda/i.test(msg)
      ? `gpu-check: ${msg}\n(the CUDA provider comes with \`ONNXRUNTIME_NODE_INSTALL_CUDA=v12 npm ci\` on a machine with network access)`
      : e,
  );
  process.exit(1);
});
