/**
 * `runEvaluation` end to end on the tiny bundle and a tiny CLIP (smoke preset): Break-a-Scene and the DreamBooth
 * baseline x 1 scene x 1 seed write results.json / results.md / report.html with a table per category, a row
 * per method and a cell per metric; an evaluation killed in its second run resumes (the ledger skips the
 * finished run, the killed one resumes from its checkpoint) and a further start recomputes nothing and gives
 * the same tables.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyBundle, DiffusionPipeline } from '@dynasyn/diffusion';
import { encodePng, readImage } from '@dynasyn/imaging';
import { writeTinyClip } from '../testing/tiny-clip.js';
import { twoSubjectInput } from '../testing/two-subjects.js';
import { readManifest } from '../output/artifacts.js';
import type { DynasynOptions } from '../types.js';
import { readLedger } from './ledger.js';
import { parseProtocol, type ProtocolJson } from './protocol.js';
import { runEvaluation, runOptions, sampleSeed, type EvaluationProgress } from './run.js';

let root: string;
let protocolJson: ProtocolJson;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-evaluate-'));
  await createTinyBundle(path.join(root, 'bundle'), { seed: 3 });
  writeTinyClip(path.join(root, 'clip'));
  const input = twoSubjectInput(64);
  fs.writeFileSync(path.join(root, 'ref.png'), await encodePng(input.image));
  for (const [i, s] of input.subjects.entries()) {
    const rgb = { width: s.mask.width, height: s.mask.height, data: new Uint8Array(s.mask.data.length * 3) };
    s.mask.data.forEach((v, p) => rgb.data.fill(v ? 255 : 0, p * 3, p * 3 + 3));
    fs.writeFileSync(path.join(root, `mask${i}.png`), await encodePng(rgb));
  }
  protocolJson = {
    version: 1,
    name: 'tiny',
    backbone: 'bundle',
    clip: 'clip',
    preset: 'smoke',
    options: { intraOpNumThreads: 1, train: { checkpointEvery: 1 } },
    methods: ['break-a-scene', 'dreambooth'],
    seeds: [5],
    scenes: [{ id: 'square-disc', image: 'ref.png', masks: ['mask0.png', 'mask1.png'], classes: ['panda', 'bowl'] }],
    prompts: { plain: ['a photo of <asset0> on the beach'], action: ['<asset1> jumping'], interaction: ['<asset0> next to <asset1>'] },
    sampling: { samplesPerPrompt: 1 },
  };
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test('two methods x one scene x one seed: the tables, the files, the method options; a killed evaluation resumes to the same tables', async () => {
  const protocol = parseProtocol(protocolJson, root);
  const out = path.join(root, 'eval');
  const events: EvaluationProgress[] = [];
  const stop = new AbortController();
  // kill the evaluation in the second run's training (after a checkpoint)
  const onProgress = (e: EvaluationProgress) => {
    events.push(e);
    if (e.kind === 'stage' && e.runId.includes('dreambooth') && e.event.stage === 'train' && e.event.step === 1) stop.abort(new Error('killed'));
  };
  await expect(runEvaluation({ protocol, out, threads: 1, onProgress, signal: stop.signal })).rejects.toThrow();
  expect([...readLedger(out).keys()]).toEqual(['square-disc/break-a-scene/seed-5']);

  const resumed: EvaluationProgress[] = [];
  const first = await runEvaluation({ protocol, out, threads: 1, onProgress: (e) => resumed.push(e) });
  const runs = resumed.filter((e) => e.kind === 'run');
  expect(runs.map((e) => [e.runId, e.skipped])).toEqual([
    ['square-disc/break-a-scene/seed-5', true],
    ['square-disc/dreambooth/seed-5', false],
  ]);
  // the killed run resumed from its checkpoint: no stage before training ran again
  expect(resumed.some((e) => e.kind === 'stage' && e.runId.includes('dreambooth') && e.event.stage === 'augment')).toBe(false);

  // the tables: one per category with prompts, a row per method, CLIP-T and CLIP-I cells over one seed
  expect(first.complete).toBe(true);
  expect(first.tables.map((t) => t.category)).toEqual(['plain', 'action', 'interaction']);
  for (const t of first.tables) {
    expect(t.rows.map((r) => r.method)).toEqual(['break-a-scene', 'dreambooth']);
    for (const r of t.rows) {
      expect(Object.keys(r.cells)).toEqual(['clipT', 'clipI']);
      expect(r.cells.clipT!.n).toBe(1);
      expect(r.cells.clipT!.std).toBeNull();
      expect(r.cells.clipT!.mean).toBeGreaterThanOrEqual(-1);
      expect(r.cells.clipT!.mean).toBeLessThanOrEqual(1);
      expect(t.samples[r.method]).toBe(1);
    }
  }
  // the cell is the run's own score of that category's sample
  const ledger = readLedger(out);
  const bas = ledger.get('square-disc/break-a-scene/seed-5')!;
  expect(first.tables[1]!.rows[0]!.cells.clipT!.mean).toBeCloseTo(bas.samples.find((s) => s.category === 'action')!.scores.clipT!, 12);
  // the same sample seeds for every method
  expect(bas.samples.map((s) => s.seed)).toEqual(ledger.get('square-disc/dreambooth/seed-5')!.samples.map((s) => s.seed));

  // method options as recorded by each run's manifest
  const bOpts = readManifest(path.join(out, bas.dir)).options as DynasynOptions;
  expect([bOpts.train.lambdas.ica, bOpts.train.lambdas.aug, bOpts.augmentation.count, bOpts.train.subjectsPerStep]).toEqual([0, 0, 0, 'union']);
  const dOpts = readManifest(path.join(out, 'runs/square-disc/dreambooth/seed-5')).options as DynasynOptions;
  expect([dOpts.train.phase1.steps, dOpts.train.phase2.steps, dOpts.train.adapters.mode, dOpts.train.maskedDiffusion, dOpts.train.priorPreservation]).toEqual([
    0,
    4,
    'full',
    false,
    true,
  ]);
  expect(JSON.parse(fs.readFileSync(path.join(out, 'priors/square-disc/seed-5/augmented.json'), 'utf8')).examples.length).toBe(1);

  // files
  const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
  expect(md).toMatch(/## Plain[\s\S]*\| Method \| CLIP-T \| CLIP-I \| samples \|[\s\S]*\| Break-a-Scene \|[\s\S]*## Interaction/);
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  expect(html).toContain('<h2>Action</h2>');
  expect(html.match(/<img src="data:image\/png;base64,/g)!.length).toBe(6); // 3 categories x 1 scene x 2 methods
  expect(JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(first)));

  // started again: nothing runs, the same tables
  const again: EvaluationProgress[] = [];
  const second = await runEvaluation({ protocol, out, threads: 1, onProgress: (e) => again.push(e) });
  expect(again.filter((e) => e.kind !== 'run')).toEqual([]);
  expect(second.tables).toEqual(first.tables);

  // a CLIP with other weights at the protocol's path: every finished run is scored again from its samples (no
  // training, no sampling), its CLIP figures change, and a further start scores nothing
  fs.cpSync(path.join(root, 'clip'), path.join(root, 'clip-first'), { recursive: true });
  writeTinyClip(path.join(root, 'clip'), 'separate', 2);
  const rescored: EvaluationProgress[] = [];
  const third = await runEvaluation({ protocol, out, threads: 1, onProgress: (e) => rescored.push(e) });
  expect(rescored.filter((e) => e.kind === 'stage')).toEqual([]);
  expect(rescored.filter((e) => e.kind === 'scored').length).toBe(2);
  expect(third.tables).not.toEqual(first.tables);
  const fourth: EvaluationProgress[] = [];
  await runEvaluation({ protocol, out, threads: 1, onProgress: (e) => fourth.push(e) });
  expect(fourth.filter((e) => e.kind !== 'run')).toEqual([]);
  fs.rmSync(path.join(root, 'clip'), { recursive: true });
  fs.cpSync(path.join(root, 'clip-first'), path.join(root, 'clip'), { recursive: true });
  const back = await runEvaluation({ protocol, out, threads: 1 });
  expect(back.tables).toEqual(first.tables); // the same CLIP again: the first figures again

  // a changed protocol is refused for the runs it changes
  const changed = parseProtocol({ ...protocolJson, prompts: { ...protocolJson.prompts, action: ['<asset1> sitting'] } }, root);
  await expect(runEvaluation({ protocol: changed, out, threads: 1 })).rejects.toThrow(/LEDGER_MISMATCH|other settings/);

  // the backbone counts by its weights: a copy elsewhere is the same backbone (nothing runs), other weights are not
  fs.cpSync(path.join(root, 'bundle'), path.join(root, 'bundle-copy'), { recursive: true });
  const copied: EvaluationProgress[] = [];
  const moved = await runEvaluation({
    protocol: parseProtocol({ ...protocolJson, backbone: 'bundle-copy' }, root),
    out,
    threads: 1,
    onProgress: (e) => copied.push(e),
  });
  expect(copied.filter((e) => e.kind !== 'run')).toEqual([]);
  expect(moved.tables).toEqual(first.tables);
  await createTinyBundle(path.join(root, 'bundle-other'), { seed: 4 }); // the same architecture and file sizes
  await expect(runEvaluation({ protocol: parseProtocol({ ...protocolJson, backbone: 'bundle-other' }, root), out, threads: 1 })).rejects.toThrow(
    /made with other settings \(the protocol, options, prompts or the backbone's weights changed\)/,
  );
  // a ledger written before runs recorded their backbone counts by its settings alone (as it did then)
  const ledgerFile = path.join(out, 'ledger.jsonl');
  const lines = fs
    .readFileSync(ledgerFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.every((l) => typeof l['backbone'] === 'string' && /^[0-9a-f]{64}$/.test(l['backbone']))).toBe(true);
  fs.writeFileSync(ledgerFile, lines.map(({ backbone: _, ...l }) => JSON.stringify(l)).join('\n') + '\n');
  const legacy = await runEvaluation({ protocol: parseProtocol({ ...protocolJson, backbone: 'bundle-other' }, root), out, threads: 1 });
  expect(legacy.tables).toEqual(first.tables);
  // scored again (another CLIP), such an entry still does not say which weights drew its samples: it gets no
  // backbone (stamped with bundle-other's, the runs drawn by bundle would have been refused on bundle below)
  writeTinyClip(path.join(root, 'clip'), 'separate', 2);
  const rescoredLegacy: EvaluationProgress[] = [];
  await runEvaluation({
    protocol: parseProtocol({ ...protocolJson, backbone: 'bundle-other' }, root),
    out,
    threads: 1,
    onProgress: (e) => rescoredLegacy.push(e),
  });
  expect(rescoredLegacy.filter((e) => e.kind === 'scored').length).toBe(2);
  expect([...readLedger(out).values()].every((r) => r.backbone === undefined)).toBe(true);
  fs.rmSync(path.join(root, 'clip'), { recursive: true });
  fs.cpSync(path.join(root, 'clip-first'), path.join(root, 'clip'), { recursive: true });
  expect((await runEvaluation({ protocol, out, threads: 1 })).tables).toEqual(first.tables);
}, 600_000); // ~100 s on an idle machine, over 120 s on a loaded one

test('class-words: no training; the backbone draws each prompt with the class words, at the seeds every method samples with', async () => {
  const protocol = parseProtocol({ ...protocolJson, methods: ['class-words'] }, root);
  const out = path.join(root, 'eval-class-words');
  const r = await runEvaluation({ protocol, out, threads: 1 });
  expect(r.tables.map((t) => t.rows.map((row) => row.method))).toEqual([['class-words'], ['class-words'], ['class-words']]);
  const run = readLedger(out).get('square-disc/class-words/seed-5')!;
  const dir = path.join(out, run.dir);
  // nothing learned, nothing augmented: the run directory holds the input and the samples only
  for (const f of ['embeddings.safetensors', 'adapters.safetensors', 'augmented', 'checkpoints']) expect(fs.existsSync(path.join(dir, f))).toBe(false);
  expect(run.samples.map((s) => [s.prompt, s.classPrompt])).toEqual([
    ['a photo of <asset0> on the beach', 'a photo of panda on the beach'],
    ['<asset1> jumping', 'bowl jumping'],
    ['<asset0> next to <asset1>', 'panda next to bowl'],
  ]);
  expect(run.samples.map((s) => s.seed)).toEqual([0, 1, 2].map((i) => sampleSeed(5, i)));
  // each sample is the backbone's image of the class prompt at that seed, pixel for pixel
  const options = runOptions(protocol, 'class-words', 5, { threads: 1 });
  const pipeline = await DiffusionPipeline.create(path.join(root, 'bundle'), { intraOpNumThreads: 1 });
  try {
    for (const s of run.samples) {
      const want = await pipeline.textToImage({
        prompt: s.classPrompt,
        steps: options.sampling.steps,
        guidance: options.sampling.guidance,
        scheduler: options.sampling.scheduler,
        seed: s.seed,
      });
      const got = await readImage(path.join(out, s.file));
      expect(Buffer.from(got.data).equals(Buffer.from(want.images[0]!.data))).toBe(true);
    }
  } finally {
    await pipeline.release();
  }
}, 300_000);

test("described: the backbone draws each prompt with the scene's subjects in words; a scene with no words for them is refused first", async () => {
  const protocol = parseProtocol({ ...protocolJson, methods: ['class-words', 'described'] }, root);
  await expect(runEvaluation({ protocol, out: path.join(root, 'eval-described-refused'), threads: 1 })).rejects.toThrow(
    /method described draws the subjects described in words; scene square-disc has none: give its files "phrases"/,
  );
  expect(fs.existsSync(path.join(root, 'eval-described-refused', 'ledger.jsonl'))).toBe(false);
  const scene = { ...protocolJson.scenes[0]!, phrases: ['red panda with a hat', 'blue striped bowl'] };
  const described = parseProtocol({ ...protocolJson, scenes: [scene], methods: ['described'] }, root);
  const out = path.join(root, 'eval-described');
  await runEvaluation({ protocol: described, out, threads: 1 });
  const run = readLedger(out).get('square-disc/described/seed-5')!;
  expect(run.samples.map((s) => [s.prompt, s.classPrompt])).toEqual([
    ['a photo of <asset0> on the beach', 'a photo of red panda with a hat on the beach'],
    ['<asset1> jumping', 'blue striped bowl jumping'],
    ['<asset0> next to <asset1>', 'red panda with a hat next to blue striped bowl'],
  ]);
  // the same seeds as the class words' row (and every method's)
  expect(run.samples.map((s) => s.seed)).toEqual([0, 1, 2].map((i) => sampleSeed(5, i)));
}, 300_000);

test('shards: two processes of one evaluation share its output directory; each runs its own runs, the tables hold every finished one', async () => {
  // a named variant of class words with no options of its own: its own row, and the same samples as the method's
  const variant = { id: 'class-words' as const, name: 'floor-again', label: 'Floor again' };
  const protocol = parseProtocol({ ...protocolJson, methods: ['class-words', 'textual-inversion', variant], seeds: [5, 6] }, root);
  const out = path.join(root, 'eval-shards');
  await expect(runEvaluation({ protocol, out, threads: 1, shard: { index: 2, count: 2 } })).rejects.toThrow(/shard 2\/2/);
  const ran: string[][] = [[], []];
  // two shards at once (in one process here; `dynasyn evaluate --jobs` starts them as processes)
  const results = await Promise.all(
    [0, 1].map((index) =>
      runEvaluation({
        protocol,
        out,
        threads: 1,
        shard: { index, count: 2 },
        onProgress: (e) => {
          if (e.kind === 'run' && !e.skipped) ran[index]!.push(e.runId);
        },
      }),
    ),
  );
  // scene, method and seed positions summing to the shard modulo 2: each shard runs every method once
  expect(ran).toEqual([
    ['square-disc/class-words/seed-5', 'square-disc/textual-inversion/seed-6', 'square-disc/floor-again/seed-5'],
    ['square-disc/class-words/seed-6', 'square-disc/textual-inversion/seed-5', 'square-disc/floor-again/seed-6'],
  ]);
  expect([...readLedger(out).keys()].sort()).toEqual([...ran[0]!, ...ran[1]!].sort());
  // whichever shard finished last saw every run: complete tables, and the report
  const last = results.find((r) => r.complete);
  expect(last).toBeDefined();
  expect(last!.runs).toHaveLength(6);
  for (const t of last!.tables) for (const r of t.rows) expect(r.cells.clipT!.n).toBe(2);
  // the variant: its own row and label, and, with no options of its own, exactly its method's scores
  expect(last!.methods.map((m) => m.label)).toEqual(['class words', 'TI (+mask)', 'Floor again']);
  for (const t of last!.tables) expect(t.rows[2]!.cells).toEqual(t.rows[0]!.cells);
  expect(fs.existsSync(path.join(out, 'runs/square-disc/floor-again/seed-6/samples.json'))).toBe(true);
  expect(fs.existsSync(path.join(out, 'report.html'))).toBe(true);
  // results.json holds the complete tables; a plain start afterwards runs nothing and finds the same tables
  expect(JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).complete).toBe(true);
  const again: EvaluationProgress[] = [];
  const whole = await runEvaluation({ protocol, out, threads: 1, onProgress: (e) => again.push(e) });
  expect(again.filter((e) => e.kind !== 'run' || !e.skipped)).toEqual([]);
  expect(whole.tables).toEqual(last!.tables);
  // a ledger whose samples are elsewhere (copied from another machine): the report still renders, saying so
  const first = readLedger(out).get('square-disc/textual-inversion/seed-5')!;
  fs.rmSync(path.join(out, first.samples[0]!.file));
  await runEvaluation({ protocol, out, threads: 1 });
  expect(fs.readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('samples not in this output directory');
}, 300_000);
