/**
 * `npm run bench:realsize -w packages/dynasyn -- --bundle DIR`: a whole personalization with the `smoke`
 * preset (every stage, a few steps, the real resolution) on a real-size bundle, as a user runs it, in a child
 * process whose memory is watched from outside. Not part of `npm run bench` or CI: it takes tens of minutes and
 * up to ~16 GB. Make the bundle first (random weights, SD 2.1's real architecture and size):
 *
 *   npm run build && node apps/cli/dist/main.js bundle create-sd21 --out /tmp/sd21-base [--variant sd21] [--dtype fp16]
 *   npm run bench:realsize -w packages/dynasyn -- --bundle /tmp/sd21-base [--threads 2] [--json out.json] [--rows-per-pass 1|2]
 *
 * It runs twice with one derived-graph cache: a cold run (derives the training graphs) and a warm run (finds
 * them). Per stage (the work before each progress event counts to that event's stage): wall time, the first
 * unit's time (sessions loaded, graphs derived), the time of each later unit (image, step), and the peak resident
 * memory (VmRSS of the child, sampled every 100 ms; VmHWM at the end). Disk: what the cache and the run folder hold beyond hard links
 * to the bundle's weights.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { drawExampleInput } from '../example/example-input.js';
import { personalize } from '../personalize.js';
import { resolveOptions } from '../presets.js';
import type { ProgressEvent } from '../types.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

interface ChildLine {
  t: number;
  event?: ProgressEvent;
  done?: { timingsMs: Record<string, number>; maxRssKiB: number };
  error?: string;
}

/** The child: one personalization, progress as JSON lines on stdout. */
async function child(): Promise<void> {
  const line = (x: ChildLine) => process.stdout.write(`${JSON.stringify(x)}\n`);
  const t0 = performance.now();
  const example = drawExampleInput(640, 560); // not square, and larger than 512: fitted like a user's photo
  const threads = Number(arg('threads') ?? 2);
  const out = await personalize({
    backbone: arg('bundle')!,
    outDir: arg('out')!,
    graphCacheDir: arg('graph-cache')!,
    input: { image: example.image, subjects: example.subjects.map((s, i) => ({ mask: example.masks[i]!, classWord: s.classWord, nounPhrase: s.nounPhrase })) },
    options: resolveOptions('smoke', { intraOpNumThreads: threads, ...(arg('rows-per-pass') ? { rowsPerPass: Number(arg('rows-per-pass')) as 1 | 2 } : {}) }),
    onProgress: (event) => line({ t: performance.now() - t0, event }),
  });
  const metrics = JSON.parse(fs.readFileSync(path.join(out.outDir, 'metrics.json'), 'utf8')) as { timingsMs?: Record<string, number> };
  line({ t: performance.now() - t0, done: { timingsMs: metrics.timingsMs ?? {}, maxRssKiB: process.resourceUsage().maxRSS } });
}

const statusKiB = (pid: number, key: 'VmRSS' | 'VmHWM'): number | undefined => {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
};

/** Bytes of the files under `dir`, split into those that are hard links to a file of `bundle` and the rest. */
function diskUse(dir: string, bundle: string): { own: number; linked: number } {
  const bundleInodes = new Set<string>();
  const walk = (d: string, visit: (p: string, st: fs.Stats) => void) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p, visit);
      else if (e.isFile()) visit(p, fs.statSync(p));
    }
  };
  walk(bundle, (_, st) => bundleInodes.add(`${st.dev}:${st.ino}`));
  const seen = new Set<string>();
  let own = 0,
    linked = 0;
  walk(dir, (_, st) => {
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    if (bundleInodes.has(id)) linked += st.size;
    else own += st.size;
  });
  return { own, linked };
}

interface StageNumbers {
  /** From the previous stage's last event to this stage's last. */
  wallMs: number;
  units: number;
  /** From the previous stage's last event to this stage's first: loading, deriving, the first unit. */
  firstUnitMs: number;
  /** Between this stage's later events (the steady per-unit time); NaN with one unit. */
  msPerLaterUnit: number;
  peakRssMiB: number;
}
interface RunNumbers {
  totalMs: number;
  stages: Record<string, StageNumbers>;
  peakRssMiB: number;
  hwmMiB: number;
}

const stageOf = (e: ProgressEvent) => (e.stage === 'train' ? `train phase ${e.phase}` : e.stage);

async function runChild(bundle: string, out: string, graphCache: string, threads: number): Promise<RunNumbers> {
  const self = fileURLToPath(import.meta.url);
  const rows = arg('rows-per-pass');
  const proc = spawn(
    process.execPath,
    [self, '--child', '--bundle', bundle, '--out', out, '--graph-cache', graphCache, '--threads', String(threads), ...(rows ? ['--rows-per-pass', rows] : [])],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      // as the dynasyn bin and the worker images run it (apps/cli/bin/dynasyn.js says why)
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '1048576' },
    },
  );
  const t0 = performance.now();
  const events: ChildLine[] = [];
  const samples: { t: number; rssKiB: number }[] = [];
  let hwm = 0;
  const sample = () => {
    const rss = statusKiB(proc.pid!, 'VmRSS');
    hwm = Math.max(hwm, statusKiB(proc.pid!, 'VmHWM') ?? 0);
    if (rss !== undefined) samples.push({ t: performance.now() - t0, rssKiB: rss });
  };
  const timer = setInterval(sample, 100);
  let buf = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!text.startsWith('{')) continue;
      const line = JSON.parse(text) as ChildLine;
      sample();
      if (line.event) {
        const e = line.event;
        process.stderr.write(`  ${(line.t / 1000).toFixed(1)} s  ${stageOf(e)} ${e.step}/${e.total}${e.message ? ` ${e.message}` : ''}\n`);
      }
      events.push(line);
    }
  });
  const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
  clearInterval(timer);
  if (code !== 0) throw new Error(`the personalization child exited with ${code}`);
  const done = events.find((e) => e.done)!.done!;
  hwm = Math.max(hwm, done.maxRssKiB);
  // An event ends a unit of work: what ran before it (since the previous event) belongs to its stage.
  const progress = events.filter((e) => e.event);
  const stageAt = (t: number) => stageOf((progress.find((e) => e.t >= t) ?? progress[progress.length - 1]!).event!);
  const peak = new Map<string, number>();
  for (const x of samples) {
    const k = stageAt(x.t);
    peak.set(k, Math.max(peak.get(k) ?? 0, x.rssKiB));
  }
  const stages: Record<string, StageNumbers> = {};
  let previousEnd = 0;
  const order = [...new Set(progress.map((e) => stageOf(e.event!)))];
  for (const key of order) {
    const es = progress.filter((e) => stageOf(e.event!) === key && (e.event!.step > 0 || e.event!.total === 0));
    const all = progress.filter((e) => stageOf(e.event!) === key);
    const last = all[all.length - 1]!;
    const units = es.length ? es.length : 1;
    const later = es.slice(1).map((e, i) => e.t - es[i]!.t);
    stages[key] = {
      wallMs: last.t - previousEnd,
      units,
      firstUnitMs: (es[0] ?? last).t - previousEnd,
      msPerLaterUnit: later.length ? later.reduce((a, b) => a + b, 0) / later.length : NaN,
      peakRssMiB: (peak.get(key) ?? 0) / 1024,
    };
    previousEnd = last.t;
  }
  return { totalMs: progress[progress.length - 1]!.t, stages, peakRssMiB: Math.max(0, ...samples.map((x) => x.rssKiB)) / 1024, hwmMiB: hwm / 1024 };
}

async function main(): Promise<void> {
  const bundle = arg('bundle');
  if (!bundle || !fs.existsSync(path.join(bundle, 'model_index.json'))) {
    console.error(
      'usage: realsize.bench.js --bundle DIR (a real-size bundle: dynasyn bundle create-sd21 --out DIR) [--threads N] [--json FILE] [--runs cold,warm] [--rows-per-pass 1|2]',
    );
    process.exit(2);
  }
  const threads = Number(arg('threads') ?? 2);
  const work = fs.mkdtempSync(path.join(path.dirname(path.resolve(bundle)), '.realsize-bench-'));
  const graphCache = path.join(work, 'graphs');
  const results: Record<string, RunNumbers & { disk: { cache: ReturnType<typeof diskUse>; run: ReturnType<typeof diskUse> } }> = {};
  try {
    for (const run of (arg('runs') ?? 'cold,warm').split(',')) {
      console.error(`${run} run on ${bundle} (${threads} threads)`);
      const out = path.join(work, `run-${run}`);
      const r = await runChild(path.resolve(bundle), out, graphCache, threads);
      results[run] = { ...r, disk: { cache: diskUse(graphCache, bundle), run: diskUse(out, bundle) } };
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
      console.log(`${run}: ${(r.totalMs / 1000).toFixed(1)} s, peak RSS ${r.peakRssMiB.toFixed(0)} MiB (VmHWM ${r.hwmMiB.toFixed(0)} MiB)`);
      for (const [k, s] of Object.entries(r.stages)) {
        const later = Number.isNaN(s.msPerLaterUnit) ? '' : `, then ${(s.msPerLaterUnit / 1000).toFixed(1)} s per unit`;
        console.log(
          `  ${k.padEnd(14)} ${(s.wallMs / 1000).toFixed(1).padStart(7)} s for ${s.units} units: first ${(s.firstUnitMs / 1000).toFixed(1)} s (loading included)${later}; peak RSS ${s.peakRssMiB.toFixed(0)} MiB`,
        );
      }
      const d = results[run]!.disk;
      console.log(
        `  disk: graph cache ${mib(d.cache.own)} written + ${mib(d.cache.linked)} hard-linked to the bundle; run folder ${mib(d.run.own)} + ${mib(d.run.linked)} linked`,
      );
    }
    const json = arg('json');
    if (json)
      fs.writeFileSync(
        json,
        JSON.stringify({ bundle, threads, host: `${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`, results }, null, 2),
      );
  } finally {
    if (!process.argv.includes('--keep')) fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv.includes('--child')) {
  child().catch((e: unknown) => {
    process.stdout.write(`${JSON.stringify({ t: 0, error: String((e as Error).stack ?? e) })}\n`);
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
