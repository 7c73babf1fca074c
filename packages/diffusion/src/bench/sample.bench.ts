/**
 * Benchmark (not a test): a full text-to-image sample on the tiny bundle, per denoising step, against a
 * bare onnxruntime run of the same UNet with the same shapes (batch 2: classifier-free guidance) and the
 * same session options and threads, in the same process; and, when Debian's python3-torch is there,
 * the same UNet graph executed eagerly by PyTorch (scripts/bench_torch_unet.py) with the same threads.
 *
 *   npm run bench -w packages/diffusion [-- --threads 2 --steps 20 --rounds 5]
 *
 * Prints one line per measurement and a JSON summary as the last line.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { createTinyBundle } from '../tiny/index.js';
import { loadBundle } from '../bundle.js';
import { DiffusionPipeline } from '../pipelines/pipeline.js';
import type { ModelBundle } from '../types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgRoot = path.resolve(here, '../..');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number): string => `${ms.toFixed(2)} ms`;

/** Bare onnxruntime: the UNet with the pipeline's CFG shapes and session options, feeds built once. */
class BareUnet {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly feeds: Record<string, ort.Tensor>,
  ) {}

  static async create(bundle: ModelBundle, threads: number): Promise<BareUnet> {
    const session = await ort.InferenceSession.create(bundle.unetPath, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
    });
    const side = bundle.sampleSize / bundle.vaeScaleFactor;
    const meta = Object.fromEntries(session.inputMetadata.map((m) => [m.name, m]));
    const tsType = (meta['timestep'] as { type?: string } | undefined)?.type ?? 'int64';
    const sample = Float32Array.from({ length: 2 * bundle.latentChannels * side * side }, (_, i) => Math.sin(i));
    const hidden = Float32Array.from({ length: 2 * bundle.maxTokens * bundle.textEmbedDim }, (_, i) => Math.cos(i) * 0.5);
    return new BareUnet(session, {
      sample: new ort.Tensor('float32', sample, [2, bundle.latentChannels, side, side]),
      timestep:
        tsType === 'int64' ? new ort.Tensor('int64', BigInt64Array.from([500n, 500n]), [2]) : new ort.Tensor('float32', Float32Array.from([500, 500]), [2]),
      encoder_hidden_states: new ort.Tensor('float32', hidden, [2, bundle.maxTokens, bundle.textEmbedDim]),
    });
  }

  /** The output for the fixed feeds (what the PyTorch run is checked against). */
  async output(): Promise<Float32Array> {
    const out = await this.session.run(this.feeds);
    return (out[this.session.outputNames[0]!]!.data as Float32Array).slice();
  }

  async time(runs: number): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await this.session.run(this.feeds);
      times.push(performance.now() - t0);
    }
    return times;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

interface SampleTiming {
  totalMs: number;
  loopPerStepMs: number;
  stepTimes: number[];
  unetTimes: number[];
}

/** Times every UNet call the pipeline makes, so the pipeline's own share of a step can be told apart from machine noise. */
function instrumentUnet(p: DiffusionPipeline): number[] {
  const times: number[] = [];
  const unet = p.unet as unknown as { predict: (...a: unknown[]) => Promise<unknown> };
  const predict = unet.predict.bind(unet);
  unet.predict = async (...a: unknown[]) => {
    const t0 = performance.now();
    try {
      return await predict(...a);
    } finally {
      times.push(performance.now() - t0);
    }
  };
  return times;
}

/** One textToImage; the loop time is from the start of the first step to the end of the last (progress stamps). */
async function timedSample(p: DiffusionPipeline, unetTimes: number[], steps: number, seed: number): Promise<SampleTiming> {
  const stamps: number[] = [];
  unetTimes.length = 0;
  const t0 = performance.now();
  await p.textToImage({ prompt: 'a photo of a cat', steps, guidance: 7.5, seed, scheduler: 'ddim', onProgress: () => stamps.push(performance.now()) });
  const total = performance.now() - t0;
  // The first step's start is not stamped: take the per-step time over steps 2..n, which excludes text encoding.
  const stepTimes = stamps.slice(1).map((s, i) => s - stamps[i]!);
  return { totalMs: total, loopPerStepMs: median(stepTimes), stepTimes, unetTimes: unetTimes.slice(1) };
}

function torchEager(bundle: ModelBundle, threads: number, runs: number, expectFile: string): { ms?: number; reason?: string; maxRelErr?: number } {
  const script = path.join(pkgRoot, 'scripts', 'bench_torch_unet.py');
  if (!fs.existsSync('/usr/bin/python3')) return { reason: '/usr/bin/python3 is not installed' };
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, onnx'], { encoding: 'utf8' });
  if (probe.status !== 0) return { reason: 'python3-torch or python3-onnx is not installed (apt-get install python3-torch python3-onnx)' };
  const r = spawnSync(
    '/usr/bin/python3',
    [script, '--model', bundle.unetPath, '--threads', String(threads), '--runs', String(runs), '--batch', '2', '--expect', expectFile],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (r.status !== 0) return { reason: `bench_torch_unet.py failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}` };
  const last = r.stdout.trim().split('\n').pop()!;
  const res = JSON.parse(last) as { median_ms: number; max_rel_err: number };
  return { ms: res.median_ms, maxRelErr: res.max_rel_err };
}

async function main(): Promise<void> {
  const threads = arg('threads', Math.min(2, os.availableParallelism()));
  const steps = arg('steps', 20);
  const rounds = arg('rounds', 5);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-bench-'));
  try {
    await createTinyBundle(dir, { seed: 0 });
    const bundle = loadBundle(dir);
    console.log(
      `tiny bundle: ${bundle.sampleSize}px, latents ${bundle.latentChannels}x${bundle.sampleSize / bundle.vaeScaleFactor}^2, text dim ${bundle.textEmbedDim}; threads ${threads}, ${steps} steps, ${rounds} rounds`,
    );
    const pipeline = await DiffusionPipeline.create(bundle, { intraOpNumThreads: threads });
    const bareUnet = await BareUnet.create(bundle, threads);
    // warm-up of both (first runs allocate the sessions' arenas)
    const unetTimes = instrumentUnet(pipeline);
    await timedSample(pipeline, unetTimes, 5, 1);
    await bareUnet.time(5);

    // Interleave the two so that machine noise hits both alike.
    const bare: number[] = [],
      perStep: number[] = [],
      totals: number[] = [],
      overhead: number[] = [];
    for (let r = 0; r < rounds; r++) {
      bare.push(...(await bareUnet.time(steps)));
      const s = await timedSample(pipeline, unetTimes, steps, 100 + r);
      perStep.push(...s.stepTimes);
      // step i (from the end of step i-1 to the end of step i) contains UNet call i
      s.stepTimes.forEach((t, i) => overhead.push(t - s.unetTimes[i]!));
      totals.push(s.totalMs / steps);
    }
    const expected = await bareUnet.output();
    await Promise.all([pipeline.release(), bareUnet.release()]);
    const bareMs = median(bare),
      stepMs = median(perStep),
      totalMs = median(totals),
      ownMs = median(overhead);
    console.log(`bare onnxruntime UNet (batch 2):     ${fmt(bareMs)} per call`);
    console.log(`pipeline denoising step (CFG):       ${fmt(stepMs)} per step   ratio ${(stepMs / bareMs).toFixed(3)} (goal < 1.10)`);
    console.log(
      `pipeline's own work per step:       ${fmt(ownMs)} per step   ${((100 * ownMs) / bareMs).toFixed(2)}% of the bare UNet call (step time minus its UNet call)`,
    );
    console.log(
      `pipeline full sample / steps:        ${fmt(totalMs)} per step   ratio ${(totalMs / bareMs).toFixed(3)} (includes text encoder and VAE decoder)`,
    );
    const expectFile = path.join(dir, 'unet-out.f32');
    fs.writeFileSync(expectFile, new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength));
    const torch = torchEager(bundle, threads, Math.max(10, steps), expectFile);
    if (torch.ms !== undefined) {
      console.log(
        `pytorch eager UNet (batch 2):        ${fmt(torch.ms)} per call   pipeline step / pytorch ${(stepMs / torch.ms).toFixed(3)} (goal < 1), output max rel err vs onnxruntime ${torch.maxRelErr!.toExponential(2)}`,
      );
    } else {
      console.log(`pytorch: not measured (${torch.reason})`);
    }
    console.log(
      JSON.stringify({
        threads,
        steps,
        rounds,
        bareUnetMs: bareMs,
        pipelineStepMs: stepMs,
        pipelineOwnPerStepMs: ownMs,
        pipelineTotalPerStepMs: totalMs,
        stepRatio: stepMs / bareMs,
        totalRatio: totalMs / bareMs,
        torchEagerMs: torch.ms ?? null,
        torchReason: torch.reason ?? null,
      }),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
