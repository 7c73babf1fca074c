/**
 * Diagnostics (not a test): node counts per op type of the UNet fixture's forward and derived training
 * graphs, before and after onnxruntime's own graph optimizations, and optionally a per-op-type kernel time
 * profile. Used to find where a training step's time goes.
 *
 *   node dist/bench/graph-stats.js [--mode all-weights|embedding|forward] [--config fixture|large|toy16|toy32] [--threads 2]
 *     [--profile [--runs 20] [--warmup 2] [--by-scope] [--top N]] [--out DIR]   (env BENCH_CONV_WGRAD=gemm|patches|...: a conv weight-gradient form)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadModel, saveModel, type OnnxModel } from '../model.js';
import { deriveGradientGraph } from '../autodiff.js';
import { isFloat, numel } from '../tensor.js';
import { LARGE_CONFIG, unetLike } from './unet-like.js';
import { toyUnet } from './toy-backbone.js';
import { applyConvWeightGradientKnob } from './knobs.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtureDir = path.resolve(here, '../../fixtures/unet');

const flag = (name: string) => process.argv.includes(`--${name}`);
applyConvWeightGradientKnob();
const opt = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

export function countOps(model: OnnxModel): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of model.graph.nodes) m.set(n.opType, (m.get(n.opType) ?? 0) + 1);
  return m;
}

function table(title: string, counts: Map<string, number>) {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(`${title}: ${total} nodes`);
  console.log(
    [...counts]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
  );
}

async function main() {
  const mode = opt('mode', 'all-weights');
  const out = opt('out', fs.mkdtempSync(path.join(os.tmpdir(), 'ort-train-stats-')));
  const config = opt('config', 'fixture');
  const toy = /^toy(\d+)$/.exec(config);
  // large and toyN: generated graphs whose loss output is `loss`; the toy backbone's UNet at batch N (sample is its input)
  const large = config === 'large' || toy !== null;
  const model = toy
    ? (await toyUnet(Number(toy[1]), path.join(out, 'bundle'))).model
    : config === 'large'
      ? unetLike(LARGE_CONFIG)
      : loadModel(path.join(fixtureDir, 'model.onnx'));
  const manifest = large ? { loss: 'loss' } : JSON.parse(fs.readFileSync(path.join(fixtureDir, 'manifest.json'), 'utf8'));
  let m = model;
  if (mode !== 'forward') {
    const wrt =
      mode === 'embedding'
        ? [large ? 'sample' : 'encoder_hidden_states']
        : [...model.graph.initializers.values()].filter((i) => isFloat(i.dtype) && numel(i.dims) > 1).map((i) => i.name);
    const t0 = performance.now();
    m = deriveGradientGraph(model, { loss: manifest.loss, wrt, allowUnused: true }).model;
    console.log(`derived in ${(performance.now() - t0).toFixed(0)} ms`);
  }
  const file = path.join(out, `${mode}.onnx`),
    optFile = path.join(out, `${mode}.opt.onnx`);
  saveModel(m, file);
  table(`${mode} emitted`, countOps(m));
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: Number(opt('threads', '2')),
    interOpNumThreads: 1,
    optimizedModelFilePath: optFile,
    enableProfiling: flag('profile'),
    profileFilePrefix: path.join(out, mode),
  });
  table(`${mode} after onnxruntime optimization`, countOps(loadModel(optFile)));
  if (flag('profile')) {
    const feeds: Record<string, ort.Tensor> = {};
    let seed = 1;
    for (const v of loadModel(file).graph.inputs) {
      const dims = (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 1)),
        n = numel(dims);
      feeds[v.name] =
        v.dtype === 7
          ? new ort.Tensor(
              'int64',
              BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 37 + 11) % 1000)),
              dims,
            )
          : new ort.Tensor(
              'float32',
              Float32Array.from({ length: n }, () => {
                seed = (seed * 16807) % 2147483647;
                return (seed / 2147483647) * 2 - 1;
              }),
              dims,
            );
    }
    const runs = Number(opt('runs', '20'));
    for (let i = 0; i < runs; i++) await session.run(feeds);
    session.endProfiling();
    // The profile lands at <prefix>_<timestamp>.json.
    const prof = fs
      .readdirSync(out)
      .filter((f) => f.startsWith(`${mode}_`) && f.endsWith('.json'))
      .map((f) => path.join(out, f))
      .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]!;
    const events = JSON.parse(fs.readFileSync(prof, 'utf8')) as { name: string; dur: number; cat: string; args?: { op_name?: string } }[];
    const per = new Map<string, { us: number; n: number }>(),
      perNode = new Map<string, number>(),
      seen = new Map<string, number>();
    // --warmup N (default 2): the first runs page in every intermediate buffer (minor faults, system time several
    // times the kernels' own); each node runs once per run, so its first N events are those runs' and are dropped
    const warmup = Math.min(Number(opt('warmup', '2')), runs - 1);
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const key = `${e.args?.op_name} ${e.name.slice(0, -'_kernel_time'.length)}`;
      const nth = seen.get(key) ?? 0;
      seen.set(key, nth + 1);
      if (nth < warmup) continue;
      perNode.set(key, (perNode.get(key) ?? 0) + e.dur);
      // --by-scope: gradient nodes grouped by the forward op they differentiate (Builder scope in the name).
      const scope = /^grad\/([A-Za-z]+):/.exec(e.name)?.[1];
      const k = flag('by-scope') ? (e.name.startsWith('grad/') ? `d${scope ?? '?'}` : `fwd ${e.args?.op_name}`) : (e.args?.op_name ?? '?');
      const r = per.get(k) ?? { us: 0, n: 0 };
      r.us += e.dur;
      r.n++;
      per.set(k, r);
    }
    const timed = runs - warmup;
    const total = [...per.values()].reduce((a, r) => a + r.us, 0) / timed;
    console.log(`kernel time per run: ${(total / 1000).toFixed(2)} ms (mean of ${timed} runs after ${warmup} warm-up runs)`);
    for (const [k, r] of [...per].sort((a, b) => b[1].us - a[1].us))
      console.log(`  ${k.padEnd(22)} ${(r.us / timed / 1000).toFixed(2).padStart(7)} ms  ${(r.n / timed).toFixed(0).padStart(5)} nodes`);
    const top = Number(opt('top', '0'));
    if (top) {
      console.log(`slowest ${top} nodes (ms per run):`);
      for (const [k, us] of [...perNode].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${(us / timed / 1000).toFixed(3).padStart(7)}  ${k}`);
    }
  }
  await session.release();
  console.log(`graphs in ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
