/**
 * Benchmark (not a test): one training step (forward + backward) of the committed UNet fixture on CPU,
 * against a plain onnxruntime forward of the same graph and, when Debian's python3-torch is present,
 * PyTorch eager doing the same work, all in this run with the same thread count. Each mode runs in its own
 * child process so its peak memory is its own.
 *
 *   npm run bench -w packages/ort-training [-- --threads 2 --iters 20 --rounds 3 --config fixture|large|both --large-iters 5]
 *
 * A second, generated model (bench/unet-like.ts: the fixture's block structure at 64x64 latents) shows the
 * compute-bound regime; the fixture itself is small enough that per-node overhead dominates.
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
import { convWeightGradientOptions } from '../ops/conv.js';
import { LARGE_CONFIG, unetLike } from './unet-like.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgRoot = path.resolve(here, '../..');
const fixtureDir = path.join(pkgRoot, 'fixtures/unet');

type Mode = 'forward' | 'embedding' | 'all-weights';
/** fixture: the committed 16x16 UNet (overhead-bound); large: a generated UNet-like model at 64x64 (compute-bound). */
type Config = 'fixture' | 'large';
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
function feedsFor(session: ort.InferenceSession, model: ReturnType<typeof loadModel>): Record<string, ort.Tensor> {
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
  // Measurement knob: BENCH_CONV_WGRAD=conv|im2col|patches forces one conv weight-gradient formulation.
  const wgrad = process.env.BENCH_CONV_WGRAD;
  if (wgrad) convWeightGradientOptions.strategy = wgrad as typeof convWeightGradientOptions.strategy;
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

const row = (name: string, ms: number, ref: string, rss?: number) =>
  console.log(`${name.padEnd(40)} ${ms.toFixed(2).padStart(9)} ms  ${ref.padEnd(30)} ${rss ? `${rss.toFixed(0)} MB peak RSS` : ''}`);

async function main() {
  const threads = arg('threads', Math.min(os.availableParallelism(), 8));
  const iters = arg('iters', 20);
  const configIdx = process.argv.indexOf('--config');
  const configs: Config[] = configIdx >= 0 && process.argv[configIdx + 1] !== 'both' ? [process.argv[configIdx + 1] as Config] : ['fixture', 'large'];
  const child = process.argv.indexOf('--child');
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
