/**
 * `dynasyn evaluate`: every (scene, method, seed) of a protocol is one personalization (its own personalize output
 * directory under `runs/`), sampled on the protocol's category prompts with seeds shared by all methods, then
 * scored (CLIP-T / CLIP-I always, the judge when the protocol names it). Finished runs go to the ledger, so a
 * killed evaluation skips them when started again and resumes the unfinished one from its checkpoint. The
 * tables (results.json, results.md) are rewritten after every run, report.html at the end.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { withCleanup } from '@dynasyn/domain';
import { loadBundle } from '@dynasyn/diffusion';
import { decode } from '@dynasyn/imaging';
import { readInputs, readSamples } from '../output/artifacts.js';
import { folderFingerprint } from '../output/manifest.js';
import { canonicalJsonOf } from './canonical.js';
import { personalize, sampleClassWords } from '../personalize.js';
import type { SamplePrompt } from '../sample.js';
import type { DynasynOptions, ProgressEvent } from '../types.js';
import { buildPairedTables, buildTables, type RunRecord, type SampleScore } from './aggregate.js';
import { EvaluationError } from './errors.js';
import { appendLedger, readLedger } from './ledger.js';
import { METHOD_IDS, METHODS, mergeOverrides, methodOptions, type MethodId } from './methods.js';
import { resultOptions } from '../presets.js';
import { writeClassPriorSet } from './prior.js';
import { CATEGORIES, type Category, type Protocol, type ProtocolMethod } from './protocol.js';
import { writeResults, type EvaluationResults } from './results.js';
import { resolveScene, type ResolvedScene } from './scenes.js';
import { loadToyworldJudge } from './judge.js';
import { createClipScorer, createJudgeScorer, type Scorer, type ScoredSample } from './scorers.js';

export type EvaluationProgress =
  | { kind: 'run'; index: number; total: number; runId: string; skipped: boolean }
  | { kind: 'stage'; runId: string; event: ProgressEvent }
  | { kind: 'scored'; runId: string; seconds: number };

export interface EvaluateRequest {
  protocol: Protocol;
  /** Output directory: runs/, priors/, ledger.jsonl, results.json, results.md, report.html. */
  out: string;
  /** Only these of the protocol's methods / these seeds (default all). */
  methods?: string[];
  seeds?: number[];
  device?: 'cpu' | 'cuda';
  threads?: number;
  /**
   * Run only the runs whose scene, method and seed positions (in the selection) sum to `index` modulo `count`:
   * `count` processes, each with its own shard, share one `out` (the ledger takes a line per finished run from any of them; the
   * graph cache and the result files are written atomically). Every shard's tables show every finished run
   * of the ledger; the last shard to finish writes the complete tables and report.html.
   */
  shard?: { index: number; count: number };
  /** Derived training graphs shared by the runs; default `<out>/graph-cache`. */
  graphCacheDir?: string;
  /** Scorers instead of the protocol's extra ones (CLIP is always added first). */
  scorers?: Scorer[];
  onProgress?: (e: EvaluationProgress) => void;
  signal?: AbortSignal;
}

/** The sample seed of the i-th sample of a run with seed `seed`: the same for every method. */
export const sampleSeed = (seed: number, i: number): number => (seed * 100_003 + i) % 2 ** 32;

/** The prompts of a run: each category's prompts in order, each `samplesPerPrompt` times. */
export function runPrompts(protocol: Pick<Protocol, 'prompts' | 'sampling'>): SamplePrompt[] {
  return CATEGORIES.flatMap((category) =>
    protocol.prompts[category].flatMap((prompt) => Array.from({ length: protocol.sampling.samplesPerPrompt }, () => ({ prompt, category }))),
  );
}

/** The protocol's row `id` (a method, or a named variant of one); a method id the protocol does not list is that method with no options of its own. */
function protocolRow(protocol: Protocol, id: string): ProtocolMethod {
  const row = protocol.methods.find((x) => x.id === id);
  if (row) return row;
  if ((METHOD_IDS as readonly string[]).includes(id)) return { id, method: id as MethodId, options: {} };
  throw new EvaluationError('BAD_PROTOCOL', `method ${id} is neither in the protocol nor a known method (${METHOD_IDS.join(', ')})`);
}

/** The options of one run of row `rowId` (a method, or a protocol's named variant), sample seeds and sampling settings of the protocol included. */
export function runOptions(protocol: Protocol, rowId: string, seed: number, runtime: { device?: 'cpu' | 'cuda'; threads?: number } = {}): DynasynOptions {
  const m = protocolRow(protocol, rowId);
  const n = runPrompts(protocol).length;
  const s = protocol.sampling;
  const sampling = {
    sampling: {
      seeds: Array.from({ length: n }, (_, i) => sampleSeed(seed, i)),
      ...(s.steps !== undefined ? { steps: s.steps } : {}),
      ...(s.guidance !== undefined ? { guidance: s.guidance } : {}),
      ...(s.scheduler !== undefined ? { scheduler: s.scheduler } : {}),
    },
  };
  return methodOptions({
    method: m.method,
    presetName: protocol.preset,
    protocolOptions: mergeOverrides(protocol.options, sampling),
    methodOptions: m.options,
    seed,
    runtime: {
      ...(runtime.device ? { executionProviders: [runtime.device] } : {}),
      ...(runtime.threads !== undefined ? { intraOpNumThreads: runtime.threads } : {}),
    },
  });
}

/** What decides a run's results: a ledger entry with another fingerprint is another run. The machine options (device, threads) are not part of it. */
function fingerprintOf(scene: ResolvedScene, sceneDef: unknown, method: string, options: DynasynOptions, prompts: SamplePrompt[]): string {
  return createHash('sha256')
    .update(canonicalJsonOf({ scene: sceneDef, classWords: scene.classWords, method, options: resultOptions(options), prompts }))
    .digest('hex');
}

/**
 * Whether a ledger entry is the run a job asks for: the same settings, on a backbone with the same weights. An
 * entry written before the ledger recorded its backbone counts by its settings alone.
 */
function sameRun(r: RunRecord, job: { fingerprint: string; backbone: string }): boolean {
  return r.fingerprint === job.fingerprint && (r.backbone === undefined || r.backbone === job.backbone);
}

function selected<T extends string | number>(all: readonly T[], wanted: readonly T[] | undefined, what: string): T[] {
  if (!wanted) return [...all];
  const unknown = wanted.filter((w) => !all.includes(w));
  if (unknown.length) throw new EvaluationError('BAD_PROTOCOL', `${what} ${unknown.join(', ')} not in the protocol (it has ${all.join(', ')})`);
  return all.filter((x) => wanted.includes(x));
}

/** Runs (or resumes) the evaluation; returns the results also written to `out`. */
export async function runEvaluation(req: EvaluateRequest): Promise<EvaluationResults> {
  const { protocol } = req;
  const out = resolve(req.out);
  mkdirSync(out, { recursive: true });
  const methods = selected(
    protocol.methods.map((m) => m.id),
    req.methods,
    'method',
  );
  const rowOf = (id: string) => protocolRow(protocol, id);
  const seeds = selected(protocol.seeds, req.seeds, 'seed');
  const shard = req.shard;
  if (shard && !(Number.isInteger(shard.count) && shard.count >= 1 && Number.isInteger(shard.index) && shard.index >= 0 && shard.index < shard.count))
    throw new EvaluationError('BAD_PROTOCOL', `shard ${shard.index}/${shard.count}: expected an index from 0 to count - 1`);
  checkProtocolInputs(protocol, req.scorers !== undefined);
  let bundle, backboneHash: string;
  try {
    bundle = loadBundle(protocol.backbone);
    // the backbone by its weights (folderFingerprint: sizes and sampled bytes), not its path: a copy elsewhere is the same
    backboneHash = folderFingerprint(protocol.backbone);
  } catch (e) {
    throw new EvaluationError('MISSING_INPUT', `backbone ${protocol.backbone} cannot be loaded: ${(e as Error).message}`, { cause: e });
  }
  const runtime = { ...(req.device ? { device: req.device } : {}), ...(req.threads !== undefined ? { threads: req.threads } : {}) };
  const clipRuntime = {
    executionProviders: [req.device ?? 'cpu'] as ('cpu' | 'cuda')[],
    ...(req.threads !== undefined ? { intraOpNumThreads: req.threads } : {}),
  };
  const scorers: Scorer[] = [];
  const evaluate = async () => {
    scorers.push(await createClipScorer(protocol.clip, clipRuntime));
    if (req.scorers) scorers.push(...req.scorers);
    else for (const s of protocol.scorers) scorers.push(createJudgeScorer(await loadToyworldJudge(s.model), s.model));
    const metrics = scorers.flatMap((s) => s.metrics);
    const scenes: ResolvedScene[] = [];
    for (const s of protocol.scenes) scenes.push(await resolveScene(s, bundle.sampleSize));
    const prompts = runPrompts(protocol);
    for (const id of methods)
      if (METHODS[rowOf(id).method].described)
        for (const scene of scenes)
          if (!scene.descriptions)
            throw new EvaluationError(
              'BAD_PROTOCOL',
              `method ${id} draws the subjects described in words; scene ${scene.id} has none: give its files "phrases"`,
            );
    const ledger = readLedger(out);
    const jobs = scenes.flatMap((scene, si) =>
      methods.flatMap((method, mi) =>
        seeds.map((seed, ki) => {
          const options = runOptions(protocol, method, seed, runtime);
          const runId = `${scene.id}/${method}/seed-${seed}`;
          const def = METHODS[rowOf(method).method];
          // shard: a Latin-square split (this key modulo the shard count), so each shard gets every method on
          // some scenes and shards take about equally long (by position alone, an even number of methods
          // would give one shard every slow method)
          const shardKey = si + mi + ki;
          return {
            scene,
            method,
            def,
            seed,
            runId,
            options,
            shardKey,
            fingerprint: fingerprintOf(scene, protocol.scenes[si], method, options, prompts),
            backbone: backboneHash,
          };
        }),
      ),
    );
    const methodRows = methods.map((id) => {
      const row = rowOf(id),
        def = METHODS[row.method];
      const own = Object.keys(row.options).length ? ` · its protocol options: ${JSON.stringify(row.options)}` : '';
      return { id, label: row.label ?? def.label, summary: `${row.id === row.method ? '' : `${row.method}: `}${def.summary}${own}` };
    });
    // the tables hold every run of the selection the ledger has finished (this process's and other shards');
    // report.html (every sample grid inlined: seconds to build) only at the end, once the ledger has them all
    const categories = CATEGORIES.filter((c) => protocol.prompts[c].length);
    const write = async (last: boolean) => {
      const finished = readLedger(out);
      const records = jobs.flatMap((j) => {
        const r = finished.get(j.runId);
        return r && sameRun(r, j) ? [r] : [];
      });
      const complete = records.length === jobs.length;
      return writeResults(
        out,
        { protocol, methods: methodRows, seeds, scenes: scenes.map((s) => s.id), metrics, records, complete, html: last && complete },
        (rs) => buildTables(rs, methodRows, seeds, metrics, categories),
        // the protocol's first method is the one under test: it against each other, paired by scene and seed
        (rs) => buildPairedTables(rs, methods[0]!, methodRows, seeds, metrics, categories),
      );
    };

    for (const [index, job] of jobs.entries()) {
      if (shard && job.shardKey % shard.count !== shard.index) continue;
      req.signal?.throwIfAborted();
      const { runId, options, fingerprint } = job;
      const dir = join(out, 'runs', job.scene.id, job.method, `seed-${job.seed}`);
      const done = ledger.get(runId);
      if (done && !sameRun(done, job))
        throw new EvaluationError(
          'LEDGER_MISMATCH',
          `${out} holds run ${runId} made with other settings (the protocol, options, prompts or the backbone's weights changed): use another --out, or remove ${dir} and its ledger line`,
        );
      req.onProgress?.({ kind: 'run', index, total: jobs.length, runId, skipped: done !== undefined });
      const t0 = performance.now();
      let record = done;
      // scored again from its samples: a metric it lacks (a scorer added later), or a scorer's model changed since (an
      // entry written before scorer versions were recorded is taken as scored by the present ones)
      const needsScoring = (r: RunRecord) =>
        metrics.some((m) => r.samples.some((s) => !(m.key in s.scores))) ||
        scorers.some((s) => s.version !== undefined && r.scorers?.[s.name] !== undefined && r.scorers[s.name] !== s.version);
      if (!record || needsScoring(record)) {
        if (!record) {
          const prior = job.def.classPrior
            ? await writeClassPriorSet(protocol.backbone, job.scene.classWords, options, join(out, 'priors', job.scene.id, `seed-${job.seed}`))
            : undefined;
          if (job.def.untrained)
            await sampleClassWords({
              backbone: protocol.backbone,
              input: job.scene.input,
              ...(job.def.described ? { words: job.scene.descriptions! } : {}),
              options,
              outDir: dir,
              prompts,
              onProgress: (event) => req.onProgress?.({ kind: 'stage', runId, event }),
              ...(req.signal ? { signal: req.signal } : {}),
            });
          else
            await personalize({
              backbone: protocol.backbone,
              input: job.scene.input,
              options,
              outDir: dir,
              prompts,
              graphCacheDir: req.graphCacheDir ?? join(out, 'graph-cache'),
              ...(prior ? { augmentedDir: prior } : {}),
              onProgress: (event) => req.onProgress?.({ kind: 'stage', runId, event }),
              ...(req.signal ? { signal: req.signal } : {}),
            });
        }
        const samples = await scoreRun(out, dir, job.scene, scorers);
        record = {
          runId,
          scene: job.scene.id,
          method: job.method,
          seed: job.seed,
          fingerprint,
          // the weights that drew the samples: an entry written before entries recorded them stays without (re-scoring
          // it says nothing about which weights drew it)
          ...(record && record.backbone === undefined ? {} : { backbone: backboneHash }),
          scorers: Object.fromEntries(scorers.flatMap((s) => (s.version !== undefined ? [[s.name, s.version]] : []))),
          dir: relative(out, dir),
          samples,
          seconds: (record?.seconds ?? 0) + (performance.now() - t0) / 1000,
        };
        appendLedger(out, record);
        req.onProgress?.({ kind: 'scored', runId, seconds: record.seconds });
        await write(false); // partial tables after each run this process finished
      }
    }
    return await write(true);
  };
  // every scorer is released even when one release fails; a release failure never replaces the run's error
  return withCleanup(evaluate, () => scorers.map((s) => s.release && (() => s.release!())));
}

/** Every file and folder the protocol names, checked before anything runs: one error listing all that is missing. */
export function checkProtocolInputs(protocol: Protocol, ownScorers = false): void {
  const missing = [
    ...(existsSync(join(protocol.backbone, 'model_index.json')) ? [] : [`backbone ${protocol.backbone} (a model bundle: model_index.json)`]),
    ...(existsSync(protocol.clip) ? [] : [`CLIP model ${protocol.clip}`]),
    ...(ownScorers ? [] : protocol.scorers.filter((s) => !existsSync(s.model)).map((s) => `${s.kind} model ${s.model}`)),
    ...protocol.scenes.flatMap((s) => (s.files ? [s.files.image, ...s.files.masks].filter((f) => !existsSync(f)).map((f) => `scene ${s.id}: ${f}`) : [])),
  ];
  if (missing.length) throw new EvaluationError('MISSING_INPUT', `${protocol.file ?? 'the protocol'} names what is not there: ${missing.join('; ')}`);
}

/** Scores the samples of a finished run directory with every scorer. */
async function scoreRun(out: string, dir: string, scene: ResolvedScene, scorers: readonly Scorer[]): Promise<SampleScore[]> {
  const { image, masks } = await readInputs(dir);
  const entries = readSamples(dir);
  const samples: ScoredSample[] = [];
  for (const e of entries) {
    samples.push({
      image: await decode(readFileSync(join(dir, e.file))),
      prompt: e.prompt,
      classPrompt: e.classPrompt,
      category: e.category as Category,
      seed: e.seed,
    });
  }
  const scores = samples.map(() => ({}) as Record<string, number | null>);
  for (const s of scorers) {
    const got = await s.score(samples, { scene, reference: image, masks });
    got.forEach((g, i) => Object.assign(scores[i]!, g));
  }
  return entries.map((e, i) => ({
    file: relative(out, join(dir, e.file)),
    prompt: e.prompt,
    classPrompt: e.classPrompt,
    category: e.category as Category,
    seed: e.seed,
    scores: scores[i]!,
  }));
}
