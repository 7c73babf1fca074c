/**
 * Benchmark (not a test): one training step (forward + backward) on CPU against a plain onnxruntime forward
 * of the same graph and, when Debian's python3-torch is present, PyTorch eager doing the same work, all in
 * this run with the same thread count. Each mode runs in its own child process so its peak memory is its own
 * (toy configs: one child per round interleaves forwards and steps, so each ratio compares runs under one load).
 *
 *   npm run bench -w packages/ort-training [-- --threads 2 --iters 20 --rounds 3 --config fixture|large|toy16|toy32|both|toy --large-iters 5]
 *     (toy configs: --toy-iters 5 steps per child, --torch-iters 3 PyTorch runs per round, 0 to skip it)
 *
 * Configs: fixture, the committed 16x16 UNet (per-node overhead dominates); large, a generated UNet-like model
 * at 64x64 (bench/unet-like.ts, compute-bound); toy16 / toy32, the toy-world backbone's UNet at batch 16 / 32
 * (bench/toy-backbone.ts: the trained bundle's architecture, @dynasyn/diffusion's toyworldBundleConfig), where the all-weights
 * step is the whole TrainingSession.trainStep with AdamW (graph run, copies, host update) and PyTorch eager
 * runs the same architecture (scripts/bench_torch_toy.py; fwd + bwd + torch.optim.AdamW.step()).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadModel, saveModel } from '../model.js';
import { deriveGradientGraph } from '../autodiff.js';
import { isFloat, numel } from '../tensor.js';
import { applyConvWeightGradientKnob } from './knobs.js';
import { LARGE_CONFIG, unetLike } from './unet-like.js';
import { toySdConfig, toyUnet } from './toy-backbone.js';
import { TrainingSession } from '../training-session.js';
import { AdamW } from '../optimizer.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgRoot = path.resolve(here, '../..');
const fixtureDir = path.join(pkgRoot, 'fixtures/unet');

type Mode = 'forward' | 'embedding' | 'all-weights';
/** fixture: the committed 16x16 UNet (overhead-bound); large: a generated UNet-like model at 64x64 (compute-bound); toyN: the toy backbone's UNet at batch N. */
type Config = 'fixture' | 'large' | 'toy16' | 'toy32';
const toyBatch = (c: Config): number | undefined => (c === 'toy16' ? 16 : c === 'toy32' ? 32 : undefined);
/** cpuMs: process CPU time per step (user + system), a load-insensitive measure of work at 1 thread. */
interface ModeResult {
  mode: Mode;
  medianMs: number;
  minMs: number;
  cpuMs: number;
  peakRssMb: number;
  trainable: number;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Inputs of the fixture: deterministic values of each graph input's static shape. */
function feedsFor(session: Pick<ort.InferenceSession, 'inputNames'>, model: ReturnType<typeof loadModel>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 1;
  for (const name of session.inputNames) {
    const v = model.graph.inputs.find((x) => x.name === name)!;
    const dims = (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    const n = numel(dims);
    if (v.dtype === 7)
      feeds[name] = new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 37 + 11) % 1000)),
        dims,
      );
    else
      feeds[name] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: n }, () => {
          seed = (seed * 16807) % 2147483647;
          return (seed / 2147483647) * 2 - 1;
        }),
        dims,
      );
  }
  return feeds;
}

async function runMode(config: Config, mode: Mode, threads: number, iters: number): Promise<ModeResult> {
  applyConvWeightGradientKnob(); // BENCH_CONV_WGRAD=conv|im2col|patches|...
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-train-bench-'));
  let model, loss: string, inputWrt: string;
  let file: string;
  if (config === 'fixture') {
    file = path.join(fixtureDir, 'model.onnx');
    model = loadModel(file);
    const manifest = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'manifest.json'), 'utf8'));
    loss = manifest.loss ?? model.graph.outputs[0]!.name;
    inputWrt = 'encoder_hidden_states';
  } else {
    model = unetLike(LARGE_CONFIG);
    file = path.join(dir, 'model.onnx');
    saveModel(model, file);
    loss = 'loss';
    inputWrt = 'sample'; // no text conditioning: the input gradient is w.r.t. the latents
  }
  let trainable: string[] = [];
  if (mode !== 'forward') {
    trainable =
      mode === 'embedding' ? [inputWrt] : [...model.graph.initializers.values()].filter((i) => isFloat(i.dtype) && numel(i.dims) > 1).map((i) => i.name);
    const derived = deriveGradientGraph(model, { loss, wrt: trainable, allowUnused: true });
    file = path.join(dir, 'train.onnx');
    saveModel(derived.model, file);
  }
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: ['cpu'] });
  const feeds = feedsFor(session, loadModel(file));
  for (let i = 0; i < 3; i++) await session.run(feeds);
  const times: number[] = [],
    cpu: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now(),
      c0 = process.cpuUsage();
    await session.run(feeds);
    const c = process.cpuUsage(c0);
    times.push(performance.now() - t0);
    cpu.push((c.user + c.system) / 1000);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    mode,
    medianMs: median(times),
    minMs: Math.min(...times),
    cpuMs: median(cpu),
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    trainable: trainable.length,
  };
}

/** One toy round: per iteration a plain forward then a whole all-weights step, so both see the same load. */
interface ToyRound {
  forwardMs: number[];
  forwardCpuMs: number[];
  stepMs: number[];
  stepCpuMs: number[];
  runMs: number[];
  hostMs: number[];
  trainable: number;
  /** Elements of all trainable tensors (PyTorch's parameter count of the same architecture). */
  parameters: number;
  peakRssMb: number;
}

/**
 * The whole all-weights step as a trainer runs it (TrainingSession.trainStep with AdamW: graph run, gradients
 * out of onnxruntime, host update), the graph run and the host side timed apart, interleaved with a plain
 * onnxruntime forward of the same UNet in the same process. cpu: process CPU time (load-insensitive at 1 thread).
 */
async function toyRound(config: Config, threads: number, iters: number): Promise<ToyRound> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-train-toy-'));
  const { model, parameters } = await toyUnet(toyBatch(config)!, path.join(dir, 'bundle'));
  const forwardFile = path.join(dir, 'forward.onnx');
  saveModel(model, forwardFile);
  const sessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1 };
  const forward = await ort.InferenceSession.create(forwardFile, { ...sessionOptions, executionProviders: ['cpu'] });
  const trainable = [...model.graph.initializers.values()].filter((i) => isFloat(i.dtype)).map((i) => i.name);
  const session = await TrainingSession.create({ model, loss: 'loss', trainable, cacheDir: path.join(dir, 'cache'), sessionOptions });
  const feeds = feedsFor(forward, loadModel(forwardFile));
  const opt = new AdamW({ lr: 1e-4, maxGradNorm: 1 });
  for (let i = 0; i < 3; i++) {
    await forward.run(feeds);
    await session.trainStep(feeds, opt);
  }
  const r: ToyRound = {
    forwardMs: [],
    forwardCpuMs: [],
    stepMs: [],
    stepCpuMs: [],
    runMs: [],
    hostMs: [],
    trainable: trainable.length,
    parameters,
    peakRssMb: 0,
  };
  const cpuSince = (c0: NodeJS.CpuUsage) => {
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000;
  };
  for (let i = 0; i < iters; i++) {
    let t0 = performance.now(),
      c0 = process.cpuUsage();
    await forward.run(feeds);
    r.forwardMs.push(performance.now() - t0);
    r.forwardCpuMs.push(cpuSince(c0));
    ((t0 = performance.now()), (c0 = process.cpuUsage()));
    await session.step(feeds);
    const t1 = performance.now();
    session.applyGradients(opt);
    const t2 = performance.now();
    r.stepCpuMs.push(cpuSince(c0));
    r.stepMs.push(t2 - t0);
    r.runMs.push(t1 - t0);
    r.hostMs.push(t2 - t1);
  }
  await Promise.all([forward.release(), session.release()]);
  fs.rmSync(dir, { recursive: true, force: true });
  return { ...r, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

interface TorchResult {
  forward_ms: number;
  embedding_ms: number;
  all_weights_ms: number;
  peak_rss_mb?: number;
  torch?: string;
}

function runTorch(threads: number, iters: number): TorchResult | string {
  const script = path.join(pkgRoot, 'scripts/bench_torch.py');
  if (!fs.existsSync('/usr/bin/python3') || !fs.existsSync(script)) return 'skipped (no /usr/bin/python3 or script)';
  const r = spawnSync('/usr/bin/python3', [script, '--threads', String(threads), '--iters', String(iters)], { encoding: 'utf8' });
  if (r.status !== 0) return `skipped (${(r.stderr || '').trim().split('\n').pop() ?? 'python failed'})`;
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
  } catch {
    return 'skipped (unparseable output)';
  }
}

/**
 * Each mode runs `rounds` times, the modes interleaved, so that load from other processes on a shared
 * machine hits them alike; per mode the round with the lowest median is kept (its noise is all upward).
 */
function runChildren(config: Config, threads: number, iters: number, rounds: number): Record<Mode, ModeResult> {
  const results = {} as Record<Mode, ModeResult>;
  for (let r = 0; r < rounds; r++) {
    for (const mode of ['forward', 'embedding', 'all-weights'] as Mode[]) {
      const c = spawnSync(
        process.execPath,
        [fileURLToPath(import.meta.url), '--child', mode, '--config', config, '--threads', String(threads), '--iters', String(iters)],
        { encoding: 'utf8' },
      );
      if (c.status !== 0) throw new Error(`${config} ${mode} failed:\n${c.stderr}`);
      const res: ModeResult = JSON.parse(c.stdout.trim().split('\n').pop()!);
      const best = results[mode];
      results[mode] =
        best && best.medianMs <= res.medianMs
          ? { ...best, cpuMs: Math.min(best.cpuMs, res.cpuMs) }
          : { ...res, cpuMs: Math.min(res.cpuMs, best?.cpuMs ?? Infinity) };
    }
  }
  return results;
}

interface ToyTorchResult {
  forward_ms: number[];
  step_ms: number[];
  forward_cpu_ms: number[];
  step_cpu_ms: number[];
  parameters: number;
  peak_rss_mb: number;
  torch: string;
  blas: string;
}

/**
 * Debian's python3-torch links the reference BLAS unless a faster one is installed; libopenblas0-pthread
 * beside it (not made the system default) is loaded for the child alone, so PyTorch's Linear layers are not
 * handicapped. Which one ran is reported.
 */
const OPENBLAS_DIR = '/usr/lib/x86_64-linux-gnu/openblas-pthread';

function runToyTorch(config: Config, threads: number, iters: number, configFile: string): ToyTorchResult | string {
  const script = path.join(pkgRoot, 'scripts/bench_torch_toy.py');
  if (!fs.existsSync('/usr/bin/python3') || !fs.existsSync(script)) return 'skipped (no /usr/bin/python3 or script)';
  const openblas = fs.existsSync(path.join(OPENBLAS_DIR, 'libblas.so.3'));
  const env = openblas ? { ...process.env, LD_LIBRARY_PATH: OPENBLAS_DIR, OPENBLAS_NUM_THREADS: String(threads) } : process.env;
  const args = [script, '--config', configFile, '--batch', String(toyBatch(config)), '--threads', String(threads), '--iters', String(iters)];
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', env });
  if (r.status !== 0) return `skipped (${(r.stderr || '').trim().split('\n').pop() ?? 'python failed'})`;
  try {
    return { ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as ToyTorchResult), blas: openblas ? 'OpenBLAS' : 'the system libblas' };
  } catch {
    return 'skipped (unparseable output)';
  }
}

const child = (config: Config, mode: Mode, threads: number, iters: number): ModeResult => {
  const c = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--child', mode, '--config', config, '--threads', String(threads), '--iters', String(iters)],
    { encoding: 'utf8' },
  );
  if (c.status !== 0) throw new Error(`${config} ${mode} failed:\n${c.stderr}`);
  return JSON.parse(c.stdout.trim().split('\n').pop()!) as ModeResult;
};

/**
 * The toy backbone: per round, one child interleaving onnxruntime forwards with all-weights trainSteps, then
 * PyTorch eager interleaving its forwards and steps. Ratios are taken per iteration pair (same load), and the
 * report gives medians over all pairs of all rounds, wall and process CPU time.
 */
async function runToy(config: Config, threads: number, iters: number, rounds: number, torchIters: number): Promise<void> {
  const sdConfig = await toySdConfig();
  const configFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'toy-config-')), 'config.json');
  fs.writeFileSync(configFile, JSON.stringify(sdConfig));
  const ort_: ToyRound[] = [],
    torch: ToyTorchResult[] = [];
  let torchSkipped = '';
  const pairs = (r: ToyRound[], f: (x: ToyRound, i: number) => number) => r.flatMap((x) => x.stepMs.map((_, i) => f(x, i)));
  for (let r = 0; r < rounds; r++) {
    const load = os.loadavg()[0]!;
    const c = spawnSync(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', 'toy', '--config', config, '--threads', String(threads), '--iters', String(iters)],
      { encoding: 'utf8' },
    );
    if (c.status !== 0) throw new Error(`${config} failed:\n${c.stderr}`);
    const o: ToyRound = JSON.parse(c.stdout.trim().split('\n').pop()!);
    ort_.push(o);
    const t = torchIters > 0 ? runToyTorch(config, threads, torchIters, configFile) : 'skipped (--torch-iters 0)';
    if (typeof t === 'object') torch.push(t);
    else torchSkipped = t;
    const tp = typeof t === 'object' ? `; torch forward ${median(t.forward_ms).toFixed(0)}, step ${median(t.step_ms).toFixed(0)} ms` : '';
    console.log(
      `  round ${r + 1} (load ${load.toFixed(1)}): forward ${median(o.forwardMs).toFixed(1)} ms, step ${median(o.stepMs).toFixed(1)} ms (run ${median(o.runMs).toFixed(1)} + host ${median(o.hostMs).toFixed(1)})${tp}`,
    );
  }
  const B = toyBatch(config)!,
    n = ort_.reduce((k, x) => k + x.stepMs.length, 0);
  console.log(
    `\nToy backbone UNet (${B}x4x16x16 latents, ${sdConfig.textEncoder.maxPositions}x${sdConfig.textEncoder.hiddenSize} context, ${ort_[0]!.trainable} trainable tensors), medians of ${n} interleaved pairs over ${rounds} rounds (cpu: process CPU time)`,
  );
  const f = median(pairs(ort_, (x, i) => x.forwardMs[i]!)),
    fc = median(pairs(ort_, (x, i) => x.forwardCpuMs[i]!));
  row('onnxruntime forward (plain)', f, `1.00x forward (cpu ${fc.toFixed(0)})`, ort_[0]!.peakRssMb);
  row(
    'ort-training all-weights trainStep',
    median(pairs(ort_, (x, i) => x.stepMs[i]!)),
    `${median(pairs(ort_, (x, i) => x.stepMs[i]! / x.forwardMs[i]!)).toFixed(2)}x forward (cpu ${median(pairs(ort_, (x, i) => x.stepCpuMs[i]!)).toFixed(0)}, ${median(pairs(ort_, (x, i) => x.stepCpuMs[i]! / x.forwardCpuMs[i]!)).toFixed(2)}x)`,
  );
  row(
    '  of which the graph run',
    median(pairs(ort_, (x, i) => x.runMs[i]!)),
    `${median(pairs(ort_, (x, i) => x.runMs[i]! / x.forwardMs[i]!)).toFixed(2)}x forward`,
  );
  row('  of which gradients out + AdamW', median(pairs(ort_, (x, i) => x.hostMs[i]!)), '');
  if (torch.length) {
    const t0 = torch[0]!,
      tp = (f: (t: ToyTorchResult, i: number) => number) => median(torch.flatMap((t) => t.step_ms.map((_, i) => f(t, i))));
    row(
      `pytorch eager forward (${t0.torch}, ${t0.blas})`,
      tp((t, i) => t.forward_ms[i]!),
      `cpu ${tp((t, i) => t.forward_cpu_ms[i]!).toFixed(0)}`,
      t0.peak_rss_mb,
    );
    row(
      'pytorch eager step (fwd+bwd+AdamW)',
      tp((t, i) => t.step_ms[i]!),
      `${tp((t, i) => t.step_ms[i]! / t.forward_ms[i]!).toFixed(2)}x its forward (cpu ${tp((t, i) => t.step_cpu_ms[i]!).toFixed(0)}, ${tp((t, i) => t.step_cpu_ms[i]! / t.forward_cpu_ms[i]!).toFixed(2)}x)`,
    );
    console.log(`  (parameters: pytorch ${t0.parameters}, onnx ${ort_[0]!.parameters})`);
  } else console.log(`pytorch eager: ${torchSkipped}`);
  fs.rmSync(path.dirname(configFile), { recursive: true, force: true });
}

const row = (name: string, ms: number, ref: string, rss?: number) =>
  console.log(`${name.padEnd(40)} ${ms.toFixed(2).padStart(9)} ms  ${ref.padEnd(30)} ${rss ? `${rss.toFixed(0)} MB peak RSS` : ''}`);

async function main() {
  const threads = arg('threads', Math.min(os.availableParallelism(), 8));
  const iters = arg('iters', 20);
  const configIdx = process.argv.indexOf('--config');
  const configArg = configIdx >= 0 ? process.argv[configIdx + 1] : 'both';
  const configs: Config[] = configArg === 'both' ? ['fixture', 'large'] : configArg === 'toy' ? ['toy16', 'toy32'] : [configArg as Config];
  const child = process.argv.indexOf('--child');
  if (child >= 0 && process.argv[child + 1] === 'toy') {
    process.stdout.write(`${JSON.stringify(await toyRound(configs[0]!, threads, iters))}\n`);
    return;
  }
  if (child >= 0) {
    const res = await runMode(configs[0]!, process.argv[child + 1] as Mode, threads, iters);
    process.stdout.write(`${JSON.stringify(res)}\n`);
    return;
  }
  if (!fs.existsSync(path.join(fixtureDir, 'model.onnx'))) throw new Error(`fixture missing: ${fixtureDir}`);
  console.log(
    `training step on CPU, ${threads} threads (onnxruntime-node ${ort.env.versions.common}); load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log('(cpu: process CPU time per step; it includes thread-pool spinning, so compare it at --threads 1)');
  for (const config of configs) {
    if (toyBatch(config)) {
      await runToy(config, threads, arg('toy-iters', 5), arg('rounds', 3), arg('torch-iters', 3));
      continue;
    }
    const n = config === 'fixture' ? iters : arg('large-iters', 5),
      rounds = arg('rounds', 3);
    const results = runChildren(config, threads, n, rounds);
    const torch = config === 'fixture' ? runTorch(threads, iters) : 'not run for the generated model (no PyTorch twin of it)';
    const f = results.forward.medianMs;
    console.log(
      config === 'fixture'
        ? `\nUNet fixture (2x4x16x16 latents, ~258k params; overhead-bound), best of ${rounds} rounds of median of ${n}`
        : `\nGenerated UNet-like model (${LARGE_CONFIG.batch}x4x${LARGE_CONFIG.size}x${LARGE_CONFIG.size} latents, channels ${LARGE_CONFIG.channels.join('/')}, no conditioning; compute-bound), best of ${rounds} rounds of median of ${n}`,
    );
    row('onnxruntime forward (plain)', f, `1.00x forward (cpu ${results.forward.cpuMs.toFixed(1)})`, results.forward.peakRssMb);
    for (const m of ['embedding', 'all-weights'] as const) {
      const r = results[m];
      const vsTorch = typeof torch === 'object' ? `, ${(r.medianMs / (m === 'embedding' ? torch.embedding_ms : torch.all_weights_ms)).toFixed(2)}x torch` : '';
      const label = m === 'embedding' ? (config === 'fixture' ? 'embedding' : 'input (latents)') : m;
      row(
        `ort-training step: ${label} (${r.trainable})`,
        r.medianMs,
        `${(r.medianMs / f).toFixed(2)}x forward${vsTorch} (cpu ${r.cpuMs.toFixed(1)})`,
        r.peakRssMb,
      );
    }
    if (typeof torch === 'object') {
      row('pytorch eager forward', torch.forward_ms, `${(torch.forward_ms / f).toFixed(2)}x ort forward`, torch.peak_rss_mb);
      row('pytorch eager step: embedding', torch.embedding_ms, '');
      row('pytorch eager step: all-weights', torch.all_weights_ms, '');
    } else {
      console.log(`pytorch eager: ${torch}`);
    }
  }
  console.log(
    `load average after: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} (on ${os.availableParallelism()} CPUs; wall times are only meaningful well below that)`,
  );
  console.log('\ngoals (fixture): embedding step <= 2.5x forward, all-weights step <= 3.5x forward, each faster than pytorch eager');
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
